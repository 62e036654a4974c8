import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { applyParams, ConfValidationError, normalizeParams, paramsOf } from '../../src/engine/dag/params.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfValidationError) return err.problems;
    throw err;
  }
  throw new Error('no ConfValidationError');
}

describe('run params', () => {
  const schema = normalizeParams({
    message: { type: 'string', default: 'hi' },
    count: { type: 'integer', minimum: 1, description: 'how many' },
    mode: { enum: ['fast', 'slow'], default: 'fast' },
  });

  it('turns the map form into an object schema; params without a default are required', () => {
    expect(schema).to.deep.equal({
      type: 'object',
      properties: {
        message: { type: 'string', default: 'hi' },
        count: { type: 'integer', minimum: 1, description: 'how many' },
        mode: { enum: ['fast', 'slow'], default: 'fast' },
      },
      required: ['count'],
    });
  });

  it('merges defaults and keeps undeclared keys', () => {
    expect(applyParams(schema, { count: 2, extra: true }, 'd')).to.deep.equal({
      message: 'hi',
      count: 2,
      mode: 'fast',
      extra: true,
    });
  });

  it('does not change the conf it was given', () => {
    const conf = { count: 1 };
    applyParams(schema, conf, 'd');
    expect(conf).to.deep.equal({ count: 1 });
  });

  it('names every invalid field', () => {
    expect(problems(() => applyParams(schema, { count: 0, message: 5, mode: 'x' }, 'd'))).to.deep.equal([
      '/message must be string',
      '/count must be >= 1',
      '/mode must be one of "fast", "slow"',
    ]);
    expect(problems(() => applyParams(schema, {}, 'd'))).to.deep.equal(['/count is required']);
  });

  it('says which DAG the conf was for', () => {
    expect(() => applyParams(schema, { count: 0 }, 'my_dag')).to.throw(
      'invalid conf for DAG "my_dag": /count must be >= 1',
    );
  });

  it('accepts a full JSON schema, including additionalProperties: false and formats', () => {
    const full = normalizeParams({
      type: 'object',
      properties: { day: { type: 'string', format: 'date' } },
      additionalProperties: false,
    });
    expect(applyParams(full, { day: '2024-01-31' }, 'd')).to.deep.equal({ day: '2024-01-31' });
    expect(problems(() => applyParams(full, { day: 'yesterday', other: 1 }, 'd'))).to.deep.equal([
      '/other is not a declared param',
      '/day must match format "date"',
    ]);
  });

  it('passes any conf when the DAG declares no params', () => {
    expect(applyParams(undefined, { a: 1 }, 'd')).to.deep.equal({ a: 1 });
  });

  it('refuses a schema with an unknown keyword or a default that breaks its own schema', () => {
    expect(() => normalizeParams({ n: { type: 'integer', minimun: 1 } })).to.throw(
      /invalid params schema.*minimun/,
    );
    expect(() => normalizeParams({ n: { type: 'integer', minimum: 1, default: 0 } })).to.throw(
      'the default of param "n" is invalid: /n must be >= 1',
    );
    expect(() => normalizeParams({ type: 'array' })).to.throw(/must have type "object"/);
  });

  it('lists params for display', () => {
    expect(paramsOf(schema)).to.deep.equal([
      { name: 'message', type: 'string', required: false, default: 'hi' },
      { name: 'count', type: 'integer', required: true, description: 'how many' },
      { name: 'mode', type: 'enum("fast"|"slow")', required: false, default: 'fast' },
    ]);
    expect(paramsOf(undefined)).to.deep.equal([]);
  });

  it('is serialised with the DAG only when declared, so other DAGs keep their hash', () => {
    const d = dag('with_params', { params: { n: { type: 'integer', default: 1 } } });
    d.bash('t', { command: 'true' });
    expect(d.serialize().params).to.deep.equal({
      type: 'object',
      properties: { n: { type: 'integer', default: 1 } },
    });
    const plain = dag('plain');
    plain.bash('t', { command: 'true' });
    expect(Object.keys(plain.serialize())).to.deep.equal([
      'dagId',
      'description',
      'fileloc',
      'tags',
      'tasks',
    ]);
  });

  it('refuses invalid params when the DAG is defined, naming the DAG', () => {
    expect(() => dag('bad', { params: { n: { type: 'integr' } } })).to.throw(DagValidationError, /DAG "bad"/);
  });
});
