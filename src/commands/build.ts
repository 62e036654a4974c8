import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { dockerHostFlag } from '../cli/flags.js';
import { usageError } from '../core/errors.js';
import { buildProject, type BuildResult } from '../services/build.js';

export default class Build extends BaseCommand<typeof Build> {
  static override summary = "Build the project's image and write its tag into deploy/stack.yml.";
  static override description = `Sends the project folder (without what .dockerignore excludes) to the Docker engine, builds the Dockerfile, optionally pushes, then sets the image of every airtasks service of deploy/stack.yml to the new tag (comments and layout stay). The image copies node_modules, so run \`npm ci --omit=dev\` first: the build itself needs no network.`;
  static override examples = [
    '<%= config.bin %> build --tag 1.4.0 --push',
    '<%= config.bin %> build --build-arg BASE_IMAGE=node:20-alpine --json',
  ];
  static override flags = {
    tag: Flags.string({ char: 't', summary: 'Image tag.', default: 'latest' }),
    push: Flags.boolean({ summary: 'Push the image to its registry after the build.' }),
    'build-arg': Flags.string({ summary: 'A build argument NAME=VALUE (repeatable).', multiple: true }),
    'no-stack': Flags.boolean({ summary: 'Leave deploy/stack.yml as it is.' }),
    'docker-host': dockerHostFlag('Docker engine address.'),
  };

  async run(): Promise<BuildResult> {
    const buildArgs: Record<string, string> = {};
    for (const a of this.flags['build-arg'] ?? []) {
      const i = a.indexOf('=');
      if (i <= 0) throw usageError(`--build-arg needs NAME=VALUE, got "${a}"`);
      buildArgs[a.slice(0, i)] = a.slice(i + 1);
    }
    const r = await buildProject({
      tag: this.flags.tag,
      push: this.flags.push,
      buildArgs,
      updateStack: !this.flags['no-stack'],
      dockerHost: this.flags['docker-host'],
      renderer: this.jsonEnabled() ? 'silent' : process.stderr.isTTY ? 'default' : 'simple',
    });
    this.log(`${r.image} ${r.imageId}`);
    return r;
  }
}
