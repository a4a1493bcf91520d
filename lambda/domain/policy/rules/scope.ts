/** Stage 2: users the service leaves alone. */
import type { PolicyRule } from '../situation';

/** A user outside includePaths, or inside excludePaths, is not looked at. */
export const outOfScope: PolicyRule = {
  name: 'out of scope',
  decides: 'nothing',
  decide: ({ scoped }) => (scoped ? undefined : {}),
};

/** I7: an exempt user is never modified, not even its inactive keys. */
export const exempt: PolicyRule = {
  name: 'exempt',
  decides: 'nothing',
  decide: ({ exemption }) => (exemption?.applies ? {} : undefined),
};
