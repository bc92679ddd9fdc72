/**
 * Plain JSON-like values deepFreeze has frozen all the way down: plain objects
 * and arrays whose own properties are all data properties holding primitives
 * or such values. Object.isFrozen says nothing of what is inside; a frozen
 * Date, Map or getter can still change what it gives, so those never count.
 */
const deeplyFrozen = new WeakSet<object>();

/** Freezes a value and everything in it; values shared across calls cannot then be edited by one of them. */
export function deepFreeze<T>(value: T): T {
  freeze(value, new Set());
  return value;
}

/** Whether `value` is plain data that went through deepFreeze: neither it nor anything in it can change. */
export const isDeepFrozen = (value: object): boolean => deeplyFrozen.has(value);

/** Freezes `value` and its children; true when it is primitive or deep-frozen plain data. */
function freeze(value: unknown, visiting: Set<object>): boolean {
  if (typeof value !== 'object' || value === null) return typeof value !== 'function';
  if (deeplyFrozen.has(value)) return true;
  if (visiting.has(value)) return false; // a cycle is not JSON-like
  visiting.add(value);
  Object.freeze(value);
  let plain = isPlainContainer(value);
  for (const key of Reflect.ownKeys(value)) {
    const d = Object.getOwnPropertyDescriptor(value, key)!;
    if (!('value' in d)) plain = false;
    else if (!freeze(d.value, visiting)) plain = false;
  }
  visiting.delete(value);
  if (plain) deeplyFrozen.add(value);
  return plain;
}

function isPlainContainer(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return Array.isArray(value) ? proto === Array.prototype : proto === Object.prototype || proto === null;
}
