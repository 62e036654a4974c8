/**
 * Nunjucks templates compiled so that they cannot leave their data: every member lookup goes through a guard
 * (no `constructor`, `__proto__`, `prototype`, no properties of functions, so `range.constructor("...")()`
 * cannot reach Node), and every `{{ ... }}` output goes through a hook the caller chooses per render (text,
 * or a reference to the value for shell commands, see shell-command.ts). Compiled templates are cached by
 * their source.
 *
 * nunjucks (some 50 modules) is loaded when the first template is compiled: most commands and task
 * arguments hold no template, and a worker that never renders one stays smaller.
 */
import { createRequire } from 'node:module';
import type nunjucks from 'nunjucks';

interface CompilerInstance {
  buffer: string;
  _emit(code: string): void;
  _compileExpression(node: unknown, frame: unknown): void;
  compile(node: unknown, frame?: unknown): void;
  getCode(): string;
}
type CompilerClass = new (name: string, throwOnUndefined: boolean) => CompilerInstance;

/** Property names that lead from data to code (the Function constructor) or to prototypes. */
const FORBIDDEN = new Set([
  'constructor',
  '__proto__',
  'prototype',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

/** What `{{ expr }}` writes: text for plain templates, a placeholder for shell commands. */
export type OutputHook = (value: unknown) => string;

/** A value's text as nunjucks writes it: nothing for null and undefined. */
export function textOf(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

/** The guarded member lookup: data in, data out; a method comes back bound to its object, as in nunjucks. */
function member(obj: unknown, key: unknown): unknown {
  if (obj === undefined || obj === null || typeof obj === 'function') return undefined;
  if (typeof key !== 'string' && typeof key !== 'number') return undefined;
  if (FORBIDDEN.has(String(key))) return undefined;
  const o = obj as Record<string | number, unknown>;
  const v = o[key];
  if (typeof v === 'function') return (...args: unknown[]) => (v as (...a: unknown[]) => unknown).apply(obj, args);
  return v;
}

/** The compiler that guards member lookups and routes outputs through the hook, over nunjucks' own. */
function guardedCompiler(Compiler: CompilerClass, TemplateData: new (...a: unknown[]) => unknown) {
  return class GuardedCompiler extends Compiler {
    compileLookupVal(node: { target: unknown; val: unknown }, frame: unknown) {
      this._emit('env.atMember((');
      this._compileExpression(node.target, frame);
      this._emit('),');
      this._compileExpression(node.val, frame);
      this._emit(')');
    }

    compileOutput(node: { children: Array<{ value?: unknown }> }, frame: unknown) {
      for (const child of node.children) {
        if (child instanceof TemplateData) {
          if (child.value) this._emit(`${this.buffer} += ${JSON.stringify(String(child.value))};\n`);
          continue;
        }
        this._emit(`${this.buffer} += env.atOutput(`);
        this.compile(child, frame);
        this._emit(');\n');
      }
    }
  };
}

// Comments are {## ... ##}, not Jinja's {# #}: bash's ${#var} (length) must pass through untouched.
const OPTIONS = { autoescape: false, throwOnUndefined: false, tags: { commentStart: '{##', commentEnd: '##}' } };

type SandboxEnvironment = nunjucks.Environment & {
  atMember: typeof member;
  atOutput: (value: unknown) => string;
};

interface Sandbox {
  nunjucks: typeof nunjucks;
  env: SandboxEnvironment;
  Compiler: CompilerClass;
  parse(src: string, ext: unknown[], opts: object): unknown;
  transform(ast: unknown, f: string[]): unknown;
}

let sandbox: Sandbox | undefined;
let hook: OutputHook = textOf;
const filters = new Map<string, (...args: unknown[]) => unknown>();

function loadSandbox(): Sandbox {
  if (sandbox) return sandbox;
  const require = createRequire(import.meta.url);
  const nj = require('nunjucks') as typeof nunjucks;
  // Parts of nunjucks its index exports (compiler, parser, nodes) and one it does not (the transformer).
  const internals = nj as unknown as {
    compiler: { Compiler: CompilerClass };
    parser: { parse(src: string, ext: unknown[], opts: object): unknown };
    nodes: { TemplateData: new (...a: unknown[]) => unknown };
  };
  const transformer = require('nunjucks/src/transformer.js') as { transform(ast: unknown, f: string[]): unknown };
  const env = new nj.Environment(null, OPTIONS) as SandboxEnvironment;
  env.atMember = member;
  env.atOutput = (value) => hook(value);
  for (const [name, fn] of filters) env.addFilter(name, fn);
  sandbox = {
    nunjucks: nj,
    env,
    Compiler: guardedCompiler(internals.compiler.Compiler, internals.nodes.TemplateData),
    parse: (src, ext, opts) => internals.parser.parse(src, ext, opts),
    transform: (ast, f) => transformer.transform(ast, f),
  };
  return sandbox;
}

/** Adds a filter to every template. */
export function addFilter(name: string, fn: (...args: never[]) => unknown) {
  filters.set(name, fn as (...args: unknown[]) => unknown);
  sandbox?.env.addFilter(name, fn as (...args: unknown[]) => unknown);
}

const CACHE_SIZE = 500;
const compiled = new Map<string, nunjucks.Template>();

function compile(source: string): nunjucks.Template {
  let t = compiled.get(source);
  if (t) return t;
  const s = loadSandbox();
  const c = new s.Compiler('template', false);
  c.compile(s.transform(s.parse(source, [], OPTIONS), []));
  const props = new Function(c.getCode())() as object;
  t = new (s.nunjucks.Template as unknown as new (src: object, e: nunjucks.Environment) => nunjucks.Template)(
    { type: 'code', obj: props },
    s.env,
  );
  if (compiled.size >= CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
  compiled.set(source, t);
  return t;
}

/** Whether the text holds template syntax at all (most commands do not: they are used as they are). */
export function isTemplate(text: string): boolean {
  return text.includes('{{') || text.includes('{%') || text.includes('{##');
}

/** Renders a template with `output` deciding what each `{{ ... }}` writes. Synchronous. */
export function renderWith(source: string, context: Record<string, unknown>, output: OutputHook): string {
  const t = compile(source);
  const previous = hook;
  hook = output;
  try {
    return t.render(context);
  } finally {
    hook = previous;
  }
}
