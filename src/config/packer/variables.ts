/**
 * HCL2 input variables: type constraints, defaults (with `env()`), `PKR_VAR_*`, var files and
 * `-var`, in Packer's order, then validation blocks.
 */
import { readFile } from 'node:fs/promises';
import { didYouMean } from '../suggest.js';
import { evaluateExpression, evaluateHcl, HclEvalError, isRecord } from './hcl-expr.js';
import type { HclScope } from './hcl-expr.js';
import { parseHcl } from './hcl-parse.js';
import type { LoadPackerTemplateOptions } from './types.js';

/** A declared variable, where it is written. */
export interface VariableDecl {
  readonly name: string;
  readonly body: Readonly<Record<string, unknown>>;
  readonly location: string;
}

/** A problem with where it is and what to do. */
export interface Located {
  readonly location: string;
  readonly message: string;
}

// --- Type constraints ---------------------------------------------------------------------------

type TypeSpec =
  | { readonly k: 'string' | 'number' | 'bool' | 'any' }
  | { readonly k: 'list' | 'set' | 'map'; readonly of: TypeSpec }
  | { readonly k: 'tuple'; readonly of: readonly TypeSpec[] }
  | { readonly k: 'object'; readonly attrs: Readonly<Record<string, TypeSpec>> };

/** Parses a type constraint as the parser hands it over (`${list(string)}`). */
export function parseType(raw: unknown): TypeSpec {
  if (raw === undefined) return { k: 'any' };
  const text = typeof raw === 'string' ? raw.replace(/^\$\{([\s\S]*)\}$/, '$1').trim() : '';
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const word = () => {
    ws();
    const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i));
    if (!m) throw new HclEvalError(`cannot read the type ${JSON.stringify(text)}`);
    i += m[0].length;
    return m[0];
  };
  const expect = (c: string) => {
    ws();
    if (text[i] !== c) throw new HclEvalError(`expected "${c}" in the type ${JSON.stringify(text)}`);
    i++;
  };
  const one = (): TypeSpec => {
    const w = word();
    if (w === 'string' || w === 'number' || w === 'bool' || w === 'any') return { k: w };
    expect('(');
    let t: TypeSpec;
    if (w === 'list' || w === 'set' || w === 'map') t = { k: w, of: one() };
    else if (w === 'tuple') {
      expect('[');
      const of: TypeSpec[] = [];
      ws();
      while (text[i] !== ']') {
        of.push(one());
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
      t = { k: 'tuple', of };
    } else if (w === 'object') {
      expect('{');
      const attrs: Record<string, TypeSpec> = {};
      ws();
      while (text[i] !== '}') {
        const name = word();
        ws();
        if (text[i] !== '=' && text[i] !== ':') throw new HclEvalError(`expected "=" after ${name} in the type`);
        i++;
        attrs[name] = one();
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
      t = { k: 'object', attrs };
    } else
      throw new HclEvalError(`unknown type ${JSON.stringify(w)}; use string, number, bool, list(), map(), object()`);
    expect(')');
    return t;
  };
  const t = one();
  ws();
  if (i !== text.length) throw new HclEvalError(`cannot read the type ${JSON.stringify(text)}`);
  return t;
}

function typeName(t: TypeSpec): string {
  switch (t.k) {
    case 'list':
    case 'set':
    case 'map':
      return `${t.k}(${typeName(t.of)})`;
    case 'tuple':
      return `tuple([${t.of.map(typeName).join(', ')}])`;
    case 'object':
      return `object({${Object.entries(t.attrs)
        .map(([k, v]) => `${k}=${typeName(v)}`)
        .join(', ')}})`;
    default:
      return t.k;
  }
}

/** Converts a value to a type as HCL does (`"8"` to 8 for a number), or says why it cannot. */
export function convertToType(value: unknown, t: TypeSpec): unknown {
  if (value === null) return null;
  const fail = (): never => {
    throw new HclEvalError(`must be ${typeName(t)}, got ${JSON.stringify(value)}`);
  };
  switch (t.k) {
    case 'any':
      return value;
    case 'string':
      return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
        ? String(value)
        : fail();
    case 'number':
      if (typeof value === 'number') return value;
      return typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value)) ? Number(value) : fail();
    case 'bool':
      if (typeof value === 'boolean') return value;
      return value === 'true' ? true : value === 'false' ? false : fail();
    case 'list':
    case 'set': {
      if (!Array.isArray(value)) return fail();
      const items = value.map((v) => convertToType(v, t.of));
      return t.k === 'set'
        ? items.filter((v, i) => items.findIndex((w) => JSON.stringify(w) === JSON.stringify(v)) === i)
        : items;
    }
    case 'tuple':
      if (!Array.isArray(value) || value.length !== t.of.length) return fail();
      return value.map((v, i) => convertToType(v, t.of[i]!));
    case 'map':
      if (!isRecord(value)) return fail();
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convertToType(v, t.of)]));
    case 'object': {
      if (!isRecord(value)) return fail();
      const out: Record<string, unknown> = {};
      for (const [k, spec] of Object.entries(t.attrs)) {
        if (!Object.hasOwn(value, k))
          throw new HclEvalError(`must have the attribute ${JSON.stringify(k)} (${typeName(t)})`);
        out[k] = convertToType(value[k], spec);
      }
      return out;
    }
  }
}

// --- Values, in Packer's order ------------------------------------------------------------------

async function readVarFile(file: string): Promise<Record<string, unknown>> {
  const text = await readFile(file, 'utf8');
  if (file.endsWith('.hcl')) {
    const parsed = (await parseHcl(file, text)) as Record<string, unknown>;
    // A var file holds literal values only (Packer's rule): no var.*, no functions of the build.
    return evaluateHcl(parsed, { now: new Date(), cwd: process.cwd() }) as Record<string, unknown>;
  }
  const json = JSON.parse(text) as unknown;
  if (!isRecord(json)) throw new HclEvalError(`${file}: a var file must be a JSON object of name: value`);
  return json;
}

/** The variables being resolved: declarations, types, values so far, and where problems go. */
interface VariableState {
  readonly byName: ReadonlyMap<string, VariableDecl>;
  readonly types: Map<string, ReturnType<typeof parseType>>;
  readonly values: Record<string, unknown>;
  /** Names that have a value (a default or an assignment). */
  readonly set: Set<string>;
  readonly base: Omit<HclScope, 'var'>;
  readonly problems: Located[];
  readonly warnings: string[];
}

/**
 * Resolves every declared variable's value: default (where `env()` is allowed), then
 * `PKR_VAR_name`, then `autoFiles`, then the command line's var files and `-var`s in their order.
 * Then the type constraint, then the validation blocks. Problems are collected, not thrown.
 */
export async function resolveVariables(
  decls: readonly VariableDecl[],
  autoFiles: readonly string[],
  options: LoadPackerTemplateOptions,
  base: Omit<HclScope, 'var'>,
  problems: Located[],
  warnings: string[],
): Promise<{ values: Record<string, unknown>; sensitive: string[] }> {
  const env = options.env ?? process.env;
  const state: VariableState = {
    byName: new Map(decls.map((d) => [d.name, d])),
    types: new Map(),
    values: {},
    set: new Set(),
    base,
    problems,
    warnings,
  };
  declareDefaults(state, decls, env);
  for (const [key, text] of Object.entries(env)) {
    if (key.startsWith('PKR_VAR_') && text !== undefined && state.byName.has(key.slice(8))) {
      try {
        assign(state, key.slice(8), fromText(state, key.slice(8), text), `environment ${key}`, false);
      } catch (error) {
        problems.push({ location: `environment ${key}`, message: (error as Error).message });
      }
    }
  }
  for (const source of [...autoFiles.map((file) => ({ file })), ...(options.variables ?? [])])
    await assignFrom(state, source);
  const sensitive = applyTypes(state, decls);
  validate(state, decls);
  return { values: state.values, sensitive };
}

/** Each declaration's type constraint and default value. */
function declareDefaults(state: VariableState, decls: readonly VariableDecl[], env: NodeJS.ProcessEnv): void {
  for (const d of decls) {
    try {
      state.types.set(d.name, parseType(d.body.type));
    } catch (error) {
      state.problems.push({ location: d.location, message: `variable "${d.name}": type: ${(error as Error).message}` });
      state.types.set(d.name, { k: 'any' });
    }
    if (Object.hasOwn(d.body, 'default')) {
      try {
        state.values[d.name] = evaluateHcl(d.body.default, { ...state.base, env });
        state.set.add(d.name);
      } catch (error) {
        state.problems.push({
          location: d.location,
          message: `variable "${d.name}": default: ${(error as Error).message}`,
        });
      }
    }
  }
}

/** A value given as text (`-var`, `PKR_VAR_`): as is for strings, else read as an HCL value. */
function fromText(state: VariableState, name: string, text: string): unknown {
  const t = state.types.get(name)!;
  if (t.k === 'string' || t.k === 'any') return text;
  try {
    return evaluateExpression(text, { ...state.base });
  } catch (error) {
    throw new HclEvalError(
      `cannot read ${JSON.stringify(text)} as ${typeName(t)} (${(error as Error).message}); write an HCL value, e.g. -var '${name}=${t.k === 'number' ? '8' : t.k === 'bool' ? 'true' : '["a"]'}'`,
    );
  }
}

/** Sets a declared variable; an undeclared one is a problem (`strict`, i.e. -var) or a warning. */
function assign(state: VariableState, name: string, value: unknown, where: string, strict: boolean): void {
  if (!state.byName.has(name)) {
    const hint = didYouMean(name, [...state.byName.keys()]);
    const message = `${where}: variable "${name}" is not declared in the template${hint ? `; did you mean "${hint}"?` : ''} (declare it with a variable block, or remove the value)`;
    if (strict) state.problems.push({ location: where, message });
    else state.warnings.push(message);
    return;
  }
  state.values[name] = value;
  state.set.add(name);
}

/** The values of one var file, or one `-var`. */
async function assignFrom(
  state: VariableState,
  source: { file: string } | { name: string; value: string },
): Promise<void> {
  if ('file' in source) {
    try {
      for (const [name, value] of Object.entries(await readVarFile(source.file)))
        assign(state, name, value, source.file, false);
    } catch (error) {
      state.problems.push({ location: source.file, message: `cannot read the var file: ${(error as Error).message}` });
    }
    return;
  }
  try {
    const value = state.byName.has(source.name) ? fromText(state, source.name, source.value) : source.value;
    assign(state, source.name, value, `-var ${source.name}`, true);
  } catch (error) {
    state.problems.push({ location: `-var ${source.name}`, message: (error as Error).message });
  }
}

/** Every variable has a value of its type; returns the sensitive values (for redaction). */
function applyTypes(state: VariableState, decls: readonly VariableDecl[]): string[] {
  const sensitive: string[] = [];
  for (const d of decls) {
    if (!state.set.has(d.name)) {
      state.problems.push({
        location: d.location,
        message: `variable "${d.name}" has no value; pass -var ${d.name}=..., put it in a var file, set PKR_VAR_${d.name}, or give it a default`,
      });
      continue;
    }
    try {
      state.values[d.name] = convertToType(state.values[d.name], state.types.get(d.name)!);
    } catch (error) {
      state.problems.push({ location: d.location, message: `variable "${d.name}": ${(error as Error).message}` });
      continue;
    }
    if (d.body.sensitive === true && typeof state.values[d.name] === 'string' && state.values[d.name] !== '')
      sensitive.push(state.values[d.name] as string);
  }
  return sensitive;
}

/** The validation blocks of variables without a problem so far; they see only the variable itself, as in Packer. */
function validate(state: VariableState, decls: readonly VariableDecl[]): void {
  for (const d of decls) {
    if (state.problems.some((p) => p.location === d.location)) continue;
    const blocks = d.body.validation;
    for (const v of Array.isArray(blocks) ? blocks : blocks === undefined ? [] : [blocks]) {
      if (!isRecord(v)) continue;
      const scope: HclScope = { ...state.base, var: { [d.name]: state.values[d.name] } };
      let ok: unknown;
      try {
        ok = evaluateHcl(v.condition, scope);
      } catch (error) {
        state.problems.push({
          location: d.location,
          message: `variable "${d.name}": validation: ${(error as Error).message}`,
        });
        continue;
      }
      if (ok !== true)
        state.problems.push({
          location: d.location,
          message: `variable "${d.name}" = ${d.body.sensitive === true ? '(sensitive)' : JSON.stringify(state.values[d.name])} fails its validation: ${typeof v.error_message === 'string' ? v.error_message : 'condition is false'}`,
        });
    }
  }
}
