/**
 * Run parameters: what a DAG declares it accepts as `conf`, as a JSON schema (validated with ajv).
 *
 * Declared in DagOptions.params either as a map of parameter name -> JSON schema of that parameter
 *   { message: { type: 'string', default: 'hi' }, count: { type: 'integer', minimum: 1 } }
 * or as a full JSON schema of the conf object ({ type: 'object', properties: {...}, required: [...] }).
 * In the map form a parameter without a default is required (as an Airflow Param without a default).
 * Defaults are merged into the conf before validation; conf keys that are not declared pass through unless
 * the full schema says `additionalProperties: false`.
 */
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { canonicalJson } from './serialize.js';

export type JsonSchema = Record<string, unknown>;

/** The declared form: a map of parameter schemas, or a full JSON schema of the conf object. */
export type ParamsSpec = Record<string, JsonSchema> | JsonSchema;

/** One parameter as `dags show` prints it. */
export interface ParamInfo {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

let ajvInstance: Ajv | null = null;
/**
 * Loaded with the first schema: the threads that import a DAG file without params, and the worker, need
 * not hold ajv. Strict mode turns a typo in a schema (`minimun`) into an error when the DAG is parsed,
 * instead of a silently ignored keyword; the relaxed sub-options only concern style, not meaning.
 */
function ajv(): Ajv {
  if (ajvInstance) return ajvInstance;
  const require = createRequire(import.meta.url);
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  const addFormats = require('ajv-formats') as (ajv: Ajv) => Ajv;
  ajvInstance = addFormats(
    new AjvClass({
      allErrors: true,
      useDefaults: true,
      strict: true,
      strictTypes: false,
      strictRequired: false,
      strictTuples: false,
    }),
  );
  return ajvInstance;
}
const compiled = new Map<string, ValidateFunction>();

function compile(schema: JsonSchema): ValidateFunction {
  const key = canonicalJson(schema);
  let v = compiled.get(key);
  if (!v) {
    v = ajv().compile(schema);
    if (compiled.size > 500) compiled.delete(compiled.keys().next().value!);
    compiled.set(key, v);
  }
  return v;
}

function isFullSchema(spec: ParamsSpec): boolean {
  // A parameter named "type" or "properties" would have an object as its value, never these.
  return typeof spec.type === 'string' || typeof spec.$schema === 'string' || isObject(spec.properties);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The JSON schema of the conf object, from either declared form. Throws an Error naming the problem
 * (an invalid schema, a default that does not satisfy its own parameter's schema).
 */
export function normalizeParams(spec: ParamsSpec): JsonSchema {
  if (!isObject(spec)) throw new Error('params must be an object: { name: { type: ... } } or a JSON schema');
  let schema: JsonSchema;
  if (isFullSchema(spec)) {
    schema = structuredClone(spec);
    if (schema.type === undefined) schema.type = 'object';
    if (schema.type !== 'object') throw new Error('a params JSON schema must have type "object"');
  } else {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const [name, p] of Object.entries(spec)) {
      if (!isObject(p))
        throw new Error(`param "${name}" must be a JSON schema object such as { type: 'string' }`);
      properties[name] = structuredClone(p);
      if (!('default' in p)) required.push(name);
    }
    schema = { type: 'object', properties, ...(required.length ? { required } : {}) };
  }
  try {
    compile(schema);
  } catch (err) {
    throw new Error(`invalid params schema: ${(err as Error).message}`);
  }
  // Each default must satisfy its own parameter's schema, or every run that relies on it would be refused.
  for (const [name, p] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) {
    if (!isObject(p) || !('default' in p)) continue;
    // Wrapped in an object schema: ajv's strict mode refuses a default at a schema's root.
    const check = compile({ type: 'object', properties: { [name]: p } });
    if (!check({ [name]: structuredClone(p.default) })) {
      throw new Error(`the default of param "${name}" is invalid: ${describeErrors(check.errors)}`);
    }
  }
  return schema;
}

export class ConfValidationError extends Error {
  constructor(
    readonly problems: string[],
    dagId: string,
  ) {
    super(`invalid conf for DAG "${dagId}": ${problems.join('; ')}`);
    this.name = 'ConfValidationError';
  }
}

/** The conf with the declared defaults merged in; throws ConfValidationError naming each invalid field. */
export function applyParams(
  schema: JsonSchema | undefined,
  conf: Record<string, unknown>,
  dagId: string,
): Record<string, unknown> {
  if (!schema) return conf;
  const merged = structuredClone(conf);
  const validate = compile(schema);
  if (!validate(merged)) throw new ConfValidationError(problemsOf(validate.errors), dagId);
  return merged;
}

function problemsOf(errors: ErrorObject[] | null | undefined, prefix = ''): string[] {
  return (errors ?? []).map((e) => {
    const at = prefix + e.instancePath;
    if (e.keyword === 'required') return `${at}/${String(e.params.missingProperty)} is required`;
    if (e.keyword === 'additionalProperties')
      return `${at}/${String(e.params.additionalProperty)} is not a declared param`;
    if (e.keyword === 'enum')
      return `${at || '(conf)'} must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    return `${at || '(conf)'} ${e.message ?? 'is invalid'}`;
  });
}

function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return problemsOf(errors).join('; ');
}

/** The parameters of a schema, for display. */
export function paramsOf(schema: JsonSchema | undefined): ParamInfo[] {
  if (!schema || !isObject(schema.properties)) return [];
  const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
  return Object.entries(schema.properties as Record<string, JsonSchema>).map(([name, p]) => ({
    name,
    type: typeLabel(p),
    required: required.has(name),
    ...('default' in p ? { default: p.default } : {}),
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
  }));
}

function typeLabel(p: JsonSchema): string {
  if (Array.isArray(p.enum)) return `enum(${p.enum.map((v) => JSON.stringify(v)).join('|')})`;
  if (Array.isArray(p.type)) return p.type.join('|');
  if (typeof p.type === 'string') return p.type;
  return 'any';
}
