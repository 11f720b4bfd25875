/**
 * The parsed form of a template: literal text and actions, each action an evaluator built from a
 * whitelisted grammar.
 */
import type { TemplateClock, TemplateData } from '../types.js';

/** A value flowing through a pipeline. */
export type Value = string | number | Readonly<Record<string, string>>;

/** Literal text. */
export interface TextNode {
  readonly kind: 'text';
  value: string;
}

/** One `{{ ... }}` action. */
export interface ActionNode {
  readonly kind: 'action';
  /** Evaluates the action's pipeline. */
  readonly run: (data: TemplateData, clock: TemplateClock) => string;
  /** True when the pipeline starts with `.Command` (inserted verbatim where unquoted). */
  readonly isCommand: boolean;
  /** Offset of the action's `{{` in the template. */
  readonly position: number;
}

/** A node of a parsed template. */
export type Node = TextNode | ActionNode;

/** A syntax problem at a character offset of the template. @internal */
export class TemplateSyntaxError extends Error {
  readonly position: number;
  constructor(message: string, position: number) {
    super(message);
    this.position = position;
  }
}

/** A token of an action. */
export type Token =
  | { readonly type: 'field'; readonly names: readonly string[]; readonly pos: number }
  | { readonly type: 'ident'; readonly name: string; readonly pos: number }
  | { readonly type: 'string'; readonly value: string; readonly pos: number }
  | { readonly type: 'number'; readonly value: number; readonly pos: number }
  | { readonly type: 'pipe'; readonly pos: number };
