/**
 * Compiles a parsed template to eta, whose generated code only calls back into the parsed actions.
 */
import { Eta } from 'eta/core';
import type { ActionNode, Node } from './ast.js';

// Non-default tags: the default "<%" would be the first thing an injection attempt tries.
const ETA_OPEN = '{%';
/** The eta instance (its `this` for compiled templates). */
export const eta = new Eta({
  tags: [ETA_OPEN, '%}'],
  autoEscape: false,
  autoFilter: false,
  autoTrim: false,
  useWith: false,
  varName: 'it',
  rmWhitespace: false,
  cache: false,
  debug: false,
  functionHeader: '',
  plugins: [],
});
const etaCache = new Map<string, (this: unknown, data: object) => string>();

/** What compiled eta code may call. */
export interface EtaData {
  /** Output of action n. */
  readonly a: (n: number) => string;
  /** Literal text n (text that could not be inlined). */
  readonly l: (n: number) => string;
}

/**
 * Compiles nodes to an eta template whose only code is `it.a(n)` and `it.l(n)`. Text is inlined
 * unless it contains the opening tag or a carriage return (eta rewrites line endings); such text
 * is fetched by index instead, so it can never open a tag. The parsed eta AST is checked against
 * what was meant before the source is compiled.
 */
export function compileEta(nodes: readonly Node[]): {
  fn: (this: unknown, data: object) => string;
  literals: string[];
  actions: ActionNode[];
} {
  let source = '';
  const literals: string[] = [];
  const actions: ActionNode[] = [];
  const expectedTags: string[] = [];
  for (const node of nodes) {
    if (node.kind === 'action') {
      const tag = `it.a(${actions.length})`;
      actions.push(node);
      expectedTags.push(tag);
      source += `${ETA_OPEN}~ ${tag} %}`;
    } else if (node.value.includes(ETA_OPEN) || node.value.includes('\r')) {
      const tag = `it.l(${literals.length})`;
      literals.push(node.value);
      expectedTags.push(tag);
      source += `${ETA_OPEN}~ ${tag} %}`;
    } else {
      source += node.value;
    }
  }
  let fn = etaCache.get(source);
  if (!fn) {
    const tags = eta.parse(source).filter((item) => typeof item !== 'string');
    const ok =
      tags.length === expectedTags.length && tags.every((t, n) => t.t === 'r' && t.val.trim() === expectedTags[n]);
    if (!ok) throw new Error('internal error: the compiled template does not have the expected shape');
    fn = eta.compile(source) as (this: unknown, data: object) => string;
    if (etaCache.size >= 1000) etaCache.clear();
    etaCache.set(source, fn);
  }
  return { fn, literals, actions };
}
