/**
 * Preload (node --require) for processes the integration tier spawns: moves this process's wall clock
 * forward by KEYROT_TEST_SHIFT_DAYS days, so that keys the emulator created "now" look that old to
 * the code under test. Only Date changes; timers and the event loop run as usual. The emulator keeps
 * its own clock, as AWS would.
 */
const days = Number(process.env.KEYROT_TEST_SHIFT_DAYS || '0');
if (days !== 0) {
  const offset = days * 24 * 60 * 60 * 1000;
  const RealDate = Date;
  class ShiftedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + offset);
      else super(...args);
    }
    static now() {
      return RealDate.now() + offset;
    }
  }
  globalThis.Date = ShiftedDate;
}
