/**
 * A record copy as de-duplication compares it: its key's fingerprint, event time and offset.
 * - `fingerprint`: four 32-bit words of the MD5 of the key's text (see dedupe-keys.ts), or null for a key with a
 *   NULL part, which never equals another (SQL equality).
 * - `timeUs`: event time in µs since the epoch, NaN when it has none (such a copy never matches either).
 * - `shard`/`seq`: -1 and NaN for an imported record, which has no offset.
 */
export interface CopyRow {
  readonly fingerprint: readonly [number, number, number, number] | null;
  readonly timeUs: number;
  readonly shard: number;
  readonly seq: number;
}

const COVERED = 1;
const DEAD = 2;
/** Covered by the cover() under way. */
const NEWLY_COVERED = 4;
const INITIAL_CAPACITY = 1024;

/**
 * The copies of de-duplication keys the speed layer compares new records with (dedupe-keys.ts), held in
 * typed arrays: a hash table from key fingerprint to the chain of that key's copies. Looking a micro-batch up
 * costs its own size, however many copies the window holds; a join in DuckDB scanned them all at every step
 * (750k copies: 14 ms at the median, 50 at the 99th percentile, growing with the window). Typed arrays rather
 * than objects, so that a million copies (60-120 bytes each, as the arrays double) add nothing for the garbage
 * collector to trace.
 *
 * Removal marks a copy dead; the table is rebuilt once the dead outnumber the live.
 */
export class CopyIndex {
  private capacity = INITIAL_CAPACITY;
  /** Copies stored, dead ones included: the next copy's number. */
  private used = 0;
  private deadCount = 0;
  private fingerprints = new Uint32Array(INITIAL_CAPACITY * 4);
  private times = new Float64Array(INITIAL_CAPACITY);
  private orders = new Float64Array(INITIAL_CAPACITY);
  private shards = new Int32Array(INITIAL_CAPACITY);
  private seqs = new Float64Array(INITIAL_CAPACITY);
  private flags = new Uint8Array(INITIAL_CAPACITY);
  /** The next copy of the same key, -1 at a chain's end. */
  private next = new Int32Array(INITIAL_CAPACITY);
  /** Open addressing on the fingerprint: each slot the newest copy of one key, -1 when empty. */
  private slots = new Int32Array(INITIAL_CAPACITY * 2).fill(-1);
  /** The uncovered (speed) copies, the only ones a new batch version can cover. */
  private uncovered = new Int32Array(INITIAL_CAPACITY);
  private uncoveredCount = 0;

  constructor(
    /** The de-duplication window, in µs: two copies match when their event times are closer than this. */
    private readonly withinUs: number,
  ) {}

  /** Live copies held. */
  get size(): number {
    return this.used - this.deadCount;
  }

  /** Bytes of the typed arrays, for `strata status`. */
  get bytes(): number {
    return [this.fingerprints, this.times, this.orders, this.shards, this.seqs, this.flags, this.next, this.slots, this.uncovered].reduce(
      (sum, array) => sum + array.byteLength,
      0,
    );
  }

  /** The order of the live copy of `row` held (same key, shard and seq), or null. */
  orderOf(row: CopyRow): number | null {
    const copy = this.copyOf(row);
    return copy === -1 ? null : this.orders[copy]!;
  }

  /** True when a live copy with `row`'s key, shard and seq is held. */
  holds(row: CopyRow): boolean {
    return this.copyOf(row) !== -1;
  }

  /** Adds a copy: covered (a record a batch version counts) or a speed copy applied in `order`. */
  add(row: CopyRow, order: number, covered: boolean): void {
    if (row.fingerprint === null) return;
    if (this.used === this.capacity) this.resize(this.capacity * 2);
    if ((this.used + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const copy = this.used++;
    const [a, b, c, d] = row.fingerprint;
    const at = copy * 4;
    this.fingerprints[at] = a;
    this.fingerprints[at + 1] = b;
    this.fingerprints[at + 2] = c;
    this.fingerprints[at + 3] = d;
    this.times[copy] = row.timeUs;
    this.orders[copy] = order;
    this.shards[copy] = row.shard;
    this.seqs[copy] = row.seq;
    this.flags[copy] = covered ? COVERED : 0;
    const slot = this.find(a, b, c, d);
    this.next[copy] = this.slots[slot]!;
    this.slots[slot] = copy;
    if (!covered) {
      if (this.uncoveredCount === this.uncovered.length) this.uncovered = grown(this.uncovered, this.uncovered.length * 2);
      this.uncovered[this.uncoveredCount++] = copy;
    }
  }

  /**
   * True when `row`, applied in `order`, gives way: another live copy of its key lies within the window and is
   * covered or was applied before it.
   */
  givesWay(row: CopyRow, order: number): boolean {
    if (row.fingerprint === null || Number.isNaN(row.timeUs)) return false;
    for (let copy = this.slots[this.find(...row.fingerprint)]!; copy !== -1; copy = this.next[copy]!) {
      const flags = this.flags[copy]!;
      if (flags & DEAD) continue;
      if (this.shards[copy] === row.shard && this.seqs[copy] === row.seq) continue;
      if (!(Math.abs(this.times[copy]! - row.timeUs) < this.withinUs)) continue;
      if (flags & COVERED || this.orders[copy]! < order) return true;
    }
    return false;
  }

  /**
   * Marks the speed copies at or below `watermark` (per shard) covered, and answers the speed copies still
   * uncovered that now give way: a newly covered copy of their key within the window was applied after them.
   */
  cover(watermark: readonly number[]): { shard: number; seq: number }[] {
    const newly = new Int32Array(this.uncoveredCount);
    let newlyCount = 0;
    let kept = 0;
    /** The latest order covered now: only a speed copy applied before it can give way. */
    let latest = -Infinity;
    for (let i = 0; i < this.uncoveredCount; i++) {
      const copy = this.uncovered[i]!;
      if (this.flags[copy]! & DEAD) continue;
      const bound = watermark[this.shards[copy]!];
      if (bound !== undefined && this.seqs[copy]! <= bound) {
        this.flags[copy]! |= COVERED | NEWLY_COVERED;
        newly[newlyCount++] = copy;
        latest = Math.max(latest, this.orders[copy]!);
      } else this.uncovered[kept++] = copy;
    }
    this.uncoveredCount = kept;
    // From the side of the speed copies left, which are fewer than those covered (the records since W), and
    // only those applied before the latest covered one: under a steady load, a fraction of one micro-batch.
    const giveWay: { shard: number; seq: number }[] = [];
    for (let i = 0; i < this.uncoveredCount; i++) {
      const speed = this.uncovered[i]!;
      const order = this.orders[speed]!;
      const time = this.times[speed]!;
      if (!(order < latest) || Number.isNaN(time)) continue;
      for (let copy = this.slots[this.slotOf(speed)]!; copy !== -1; copy = this.next[copy]!) {
        if ((this.flags[copy]! & (DEAD | NEWLY_COVERED)) !== NEWLY_COVERED) continue;
        if (this.orders[copy]! > order && Math.abs(this.times[copy]! - time) < this.withinUs) {
          giveWay.push({ shard: this.shards[speed]!, seq: this.seqs[speed]! });
          break;
        }
      }
    }
    for (let i = 0; i < newlyCount; i++) this.flags[newly[i]!]! &= ~NEWLY_COVERED;
    return giveWay;
  }

  /** Removes the covered copies whose event time is before `beforeUs` (a copy without one stays). */
  evictCovered(beforeUs: number): void {
    this.removeWhere((copy) => (this.flags[copy]! & COVERED) !== 0 && this.times[copy]! < beforeUs);
  }

  /** Removes every copy. */
  clear(): void {
    this.used = 0;
    this.deadCount = 0;
    this.uncoveredCount = 0;
    this.resize(INITIAL_CAPACITY);
    this.uncovered = new Int32Array(INITIAL_CAPACITY);
    this.slots = new Int32Array(INITIAL_CAPACITY * 2).fill(-1);
  }

  private removeWhere(test: (copy: number) => boolean): void {
    for (let copy = 0; copy < this.used; copy++) {
      if (this.flags[copy]! & DEAD || !test(copy)) continue;
      this.flags[copy]! |= DEAD;
      this.deadCount++;
    }
    if (this.deadCount * 2 > this.used) this.compact();
  }

  /** The live copy with `row`'s key, shard and seq, or -1. */
  private copyOf(row: CopyRow): number {
    if (row.fingerprint === null) return -1;
    for (let copy = this.slots[this.find(...row.fingerprint)]!; copy !== -1; copy = this.next[copy]!) {
      if (!(this.flags[copy]! & DEAD) && this.shards[copy] === row.shard && this.seqs[copy] === row.seq) return copy;
    }
    return -1;
  }

  /** The slot of the fingerprint `a b c d`: the one holding its chain, or the empty one where its chain would start. */
  private find(a: number, b: number, c: number, d: number): number {
    const mask = this.slots.length - 1;
    for (let slot = d & mask; ; slot = (slot + 1) & mask) {
      const head = this.slots[slot]!;
      if (head === -1) return slot;
      const at = head * 4;
      const f = this.fingerprints;
      if (f[at] === a && f[at + 1] === b && f[at + 2] === c && f[at + 3] === d) return slot;
    }
  }

  /** The slot of a stored copy's key. */
  private slotOf(copy: number): number {
    const at = copy * 4;
    const f = this.fingerprints;
    return this.find(f[at]!, f[at + 1]!, f[at + 2]!, f[at + 3]!);
  }

  /** Reallocates the per-copy arrays for `capacity` copies (at least those used). */
  private resize(capacity: number): void {
    this.fingerprints = grown(this.fingerprints, capacity * 4);
    this.times = grown(this.times, capacity);
    this.orders = grown(this.orders, capacity);
    this.shards = grown(this.shards, capacity);
    this.seqs = grown(this.seqs, capacity);
    this.flags = grown(this.flags, capacity);
    this.next = grown(this.next, capacity);
    this.capacity = capacity;
  }

  /** Rebuilds the chains into `slotCount` slots, oldest copy first so that each chain stays newest first. */
  private rehash(slotCount: number): void {
    this.slots = new Int32Array(slotCount).fill(-1);
    for (let copy = 0; copy < this.used; copy++) {
      const slot = this.slotOf(copy);
      this.next[copy] = this.slots[slot]!;
      this.slots[slot] = copy;
    }
  }

  /** Drops the dead copies: the live ones move down in their order, and chains and slots are rebuilt. */
  private compact(): void {
    const moved = new Int32Array(this.used).fill(-1);
    let live = 0;
    for (let copy = 0; copy < this.used; copy++) {
      if (this.flags[copy]! & DEAD) continue;
      if (copy !== live) {
        this.fingerprints.copyWithin(live * 4, copy * 4, copy * 4 + 4);
        this.times[live] = this.times[copy]!;
        this.orders[live] = this.orders[copy]!;
        this.shards[live] = this.shards[copy]!;
        this.seqs[live] = this.seqs[copy]!;
        this.flags[live] = this.flags[copy]!;
      }
      moved[copy] = live++;
    }
    let kept = 0;
    for (let i = 0; i < this.uncoveredCount; i++) {
      const copy = moved[this.uncovered[i]!]!;
      if (copy !== -1) this.uncovered[kept++] = copy;
    }
    this.uncoveredCount = kept;
    this.used = live;
    this.deadCount = 0;
    // Memory follows the copies held back down, as eviction makes room (with room to grow again).
    let capacity = INITIAL_CAPACITY;
    while (capacity < live * 2) capacity *= 2;
    if (capacity < this.capacity) this.resize(capacity);
    if (this.uncovered.length > capacity) this.uncovered = grown(this.uncovered, capacity);
    this.rehash(capacity * 2);
  }
}

/** A copy of `array` with `length` elements: its first ones, zeros after. */
function grown<T extends Uint32Array | Float64Array | Int32Array | Uint8Array>(array: T, length: number): T {
  const resized = new (array.constructor as new (length: number) => T)(length);
  resized.set(length >= array.length ? array : (array.subarray(0, length) as T));
  return resized;
}
