/**
 * The acks of one consumer channel, sent once per turn of the event loop: when the oldest deliveries in
 * hand are all acked, one ack with `multiple` covers them (one frame and one socket write instead of one
 * each); acks out of that order go one by one, in the same turn, so no slot waits on another's task.
 * Delivery tags grow on a channel, so "the oldest" is the order of delivery.
 */
export class TurnAcks {
  /** Tags delivered and not yet acked or released, oldest first. */
  private readonly open: number[] = [];
  private readonly acked = new Set<number>();
  private scheduled = false;

  constructor(private readonly send: (tag: number, multiple: boolean) => void) {}

  delivered(tag: number) {
    this.open.push(tag);
  }

  ack(tag: number) {
    this.acked.add(tag);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** A delivery released (nacked) at once: no ack may cover it. */
  released(tag: number) {
    const i = this.open.indexOf(tag);
    if (i >= 0) this.open.splice(i, 1);
  }

  readonly flush = () => {
    this.scheduled = false;
    let n = 0;
    while (n < this.open.length && this.acked.has(this.open[n]!)) this.acked.delete(this.open[n++]!);
    if (n > 0) this.send(this.open[n - 1]!, n > 1);
    this.open.splice(0, n);
    for (const tag of this.acked) {
      this.send(tag, false);
      this.released(tag);
    }
    this.acked.clear();
  };
}
