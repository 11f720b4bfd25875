/**
 * Small readers the rules share. Rules are defensive about types: a field of the wrong type has
 * its own issue already.
 */
/** A config object as rules see it, before it is known to be valid. */
export type Loose = Readonly<Record<string, unknown>>;
/** Reports a problem at an option path. */
export type Add = (path: string, value: unknown, message: string) => void;

export const isString = (x: unknown): x is string => typeof x === 'string';
export const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

export const has = (c: Loose, key: string): boolean => c[key] !== undefined;
export const nonEmptyList = (x: unknown): x is readonly unknown[] => Array.isArray(x) && x.length > 0;
export const asRecord = (x: unknown): Loose => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Loose) : {});
export const asList = (x: unknown): readonly unknown[] => (Array.isArray(x) ? x : []);
export const isTrue = (x: unknown): boolean => x === true;
