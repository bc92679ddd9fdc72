/** Everything deepFreeze has frozen all the way down (Object.isFrozen says nothing of what is inside). */
const deeplyFrozen = new WeakSet<object>();

/** Freezes a JSON-like value and everything in it; values shared across calls cannot then be edited by one of them. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !deeplyFrozen.has(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
    deeplyFrozen.add(value);
  }
  return value;
}

/** Whether `value` went through deepFreeze: neither it nor anything in it can change. */
export const isDeepFrozen = (value: object): boolean => deeplyFrozen.has(value);
