/**
 * Node 20 does not define Symbol.asyncDispose everywhere; `await using` needs it. Imported
 * (first) by every module that defines a class with `[Symbol.asyncDispose]`.
 *
 * @module
 */
;(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol.for('nodejs.asyncDispose')

export {}
