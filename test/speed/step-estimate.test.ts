import { describe, expect, it } from 'vitest';
import { StepEstimate } from '../../src/speed/step-estimate.js';

/**
 * The speed layer reads the log `speed.intervalMs` minus this estimate after its last read, so that a record
 * arriving just after one read is visible within the interval: the estimate has to cover the slower steps, not
 * the average one, or every record a slow step carries is late.
 */
describe('the step-duration estimate that times the speed layer', () => {
  const observed = (durations: readonly number[]) => {
    const estimate = new StepEstimate();
    for (const ms of durations) estimate.observe(ms);
    return estimate.ms;
  };

  it('is 0 before any step, and the step time itself when steps take a steady time', () => {
    expect(new StepEstimate().ms).toBe(0);
    expect(observed(Array.from({ length: 60 }, () => 50))).toBeCloseTo(50, 0);
  });

  it('covers the slower steps when step times vary, where their average would not', () => {
    // Ending on a fast step: the next one may well be slow again.
    const alternating = Array.from({ length: 61 }, (_, i) => (i % 2 === 0 ? 30 : 70));
    expect(observed(alternating)).toBeGreaterThanOrEqual(70);
  });

  it('rises at once after a long step (an adoption) and comes back to the steady time', () => {
    const steady = Array.from({ length: 40 }, () => 50);
    const spike = observed([...steady, 1000]);
    expect(spike).toBeGreaterThan(500);
    expect(observed([...steady, 1000, ...steady])).toBeLessThan(60);
  });
});
