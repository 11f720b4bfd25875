/**
 * `defined()`: drops the undefined values of an object, so optional inputs stay absent under
 * `exactOptionalPropertyTypes` without a hand-written `...(x ? { x } : {})` per field.
 */

/** Strips undefined values so optional inputs stay absent. @internal */
export function defined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
