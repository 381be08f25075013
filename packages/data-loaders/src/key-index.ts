const DENSE_LIMIT = 1 << 20;

/**
 * The decimal value of `text` when it is a canonical non-negative integer below 2^20 (no sign,
 * no leading zero), else -1. Canonical integers and their text are in one-to-one correspondence,
 * so such keys can be looked up by number without conflating `"7"` and `"007"`.
 */
export function smallIntegerOf(text: string): number {
  const length = text.length;
  if (length === 0 || length > 7) return -1;
  const first = text.charCodeAt(0) - 48;
  if (first < 0 || first > 9 || (first === 0 && length > 1)) return -1;
  let value = first;
  for (let index = 1; index < length; index++) {
    const digit = text.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value < DENSE_LIMIT ? value : -1;
}

/**
 * A string-keyed map that stores small canonical integer keys (most ids in recommendation logs)
 * in a dense array: a lookup then costs a digit scan instead of hashing a fresh string.
 */
export class KeyIndex<T> {
  private dense: (T | undefined)[] = [];
  private readonly strings = new Map<string, T>();
  size = 0;

  get(key: string): T | undefined {
    const small = smallIntegerOf(key);
    return small >= 0 ? this.dense[small] : this.strings.get(key);
  }

  set(key: string, value: T): void {
    const small = smallIntegerOf(key);
    if (small >= 0) {
      if (small >= this.dense.length) {
        const grown = new Array<T | undefined>(Math.max(small + 1, this.dense.length * 2)).fill(undefined);
        for (let index = 0; index < this.dense.length; index++) grown[index] = this.dense[index];
        this.dense = grown;
      }
      if (this.dense[small] === undefined) this.size++;
      this.dense[small] = value;
    } else {
      if (!this.strings.has(key)) this.size++;
      this.strings.set(key, value);
    }
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }
}
