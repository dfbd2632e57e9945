/**
 * How long the speed layer's next step will take, estimated high rather than on average: the mean of recent
 * steps plus four times their mean deviation, as TCP estimates a retransmission timeout (Jacobson/Karels, RFC
 * 6298). The scheduler reads the log that long before a record must be visible, so an estimate that covers the
 * slower steps keeps arrival → visible within the interval for them too, not only for a step of average length;
 * a steady step time leaves the estimate at the mean.
 */
export class StepEstimate {
  private mean = 0;
  private deviation = 0;
  private observed = false;

  /** The estimate, in ms (0 before any step). */
  get ms(): number {
    return this.mean + 4 * this.deviation;
  }

  observe(tookMs: number): void {
    if (!this.observed) {
      this.observed = true;
      this.mean = tookMs;
      this.deviation = tookMs / 2;
      return;
    }
    this.deviation = 0.75 * this.deviation + 0.25 * Math.abs(tookMs - this.mean);
    this.mean = 0.875 * this.mean + 0.125 * tookMs;
  }
}
