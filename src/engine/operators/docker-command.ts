/**
 * What a docker task's container runs: a string command under /bin/sh -c with every template value passed
 * as data (a variable of the container's environment, or a file for a large one), or an argv whose elements
 * are rendered as text (no shell reads them).
 */
import { render, templateContext } from '../templates/render.js';
import { renderShellCommand, UnsafeTemplateError } from '../templates/shell-command.js';
import type { DockerArgs } from './docker-args.js';
import { TaskFailure, type OperatorContext } from './types.js';
import { ValueFiles } from './value-files.js';

export interface ContainerCommand {
  cmd: string[] | undefined;
  /** Variables holding the command's values. */
  env: Record<string, string>;
  /** Values too large for the environment (and a large conf, added later). */
  files: ValueFiles;
}

export function containerCommand(a: DockerArgs, ctx: OperatorContext): ContainerCommand {
  const tpl = templateContext(ctx.run);
  if (a.command === undefined) return { cmd: undefined, env: {}, files: new ValueFiles() };
  if (typeof a.command !== 'string')
    return { cmd: a.command.map((c) => render(c, tpl)), env: {}, files: new ValueFiles() };
  try {
    const c = renderShellCommand(a.command, tpl, 'sh');
    return { cmd: ['/bin/sh', '-c', c.script], env: c.env, files: new ValueFiles(c.files) };
  } catch (err) {
    if (err instanceof UnsafeTemplateError) throw new TaskFailure(`the command template: ${err.message}`);
    throw err;
  }
}
