import { describe, expect, it } from 'vitest';
import { KeyFilter } from '../../src/speed/key-filter.js';

describe("a speed range's filter of first group-by values", () => {
  it('holds every value it was given, alone or folded with others, and few it was not', () => {
    const pages = (from: number, count: number) => Array.from({ length: count }, (_, i) => `/page/${from + i}`);
    const first = KeyFilter.of(pages(0, 5000));
    const second = KeyFilter.of([...pages(5000, 5000), 'é ü 文字', '']);
    for (const page of pages(0, 5000)) expect(first.mayHold(page)).toBe(true);
    const folded = KeyFilter.union([first, second]);
    for (const page of [...pages(0, 10_000), 'é ü 文字', '']) expect(folded.mayHold(page)).toBe(true);
    // Values never added: about 1 % pass a filter of 5,000 (a pass only costs the scan it would have saved).
    const strangers = pages(100_000, 20_000);
    const passed = strangers.filter((page) => first.mayHold(page)).length;
    expect(passed / strangers.length).toBeLessThan(0.03);
    expect(KeyFilter.of([]).mayHold('/page/1')).toBe(false);
  });
});
