/**
 * What was thrown, as an Error or as its message: JavaScript lets anything be thrown.
 */

/** The thrown value itself when it is an Error, otherwise an Error carrying its text. @internal */
export function toError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}

/** The thrown value's message (its text when it is not an Error). @internal */
export function messageOf(thrown: unknown): string {
  return thrown instanceof Error ? thrown.message : String(thrown);
}
