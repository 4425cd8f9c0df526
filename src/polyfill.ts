/**
 * Node 20 does not define Symbol.asyncDispose and Symbol.dispose everywhere; `await using`
 * and `using` need them. Imported (first) by every module that defines a class with
 * `[Symbol.asyncDispose]` or `[Symbol.dispose]`.
 *
 * @module
 */
;(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol.for('nodejs.asyncDispose')
;(Symbol as { dispose?: symbol }).dispose ??= Symbol.for('nodejs.dispose')

export {}
