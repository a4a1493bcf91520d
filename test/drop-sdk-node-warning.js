/**
 * Jest setup file (setupFiles in jest.config.js): drops the AWS SDK's Node.js support warning.
 *
 * Why: @aws-sdk/core's emitWarningIfUnsupportedVersion calls process.emitWarning once per module
 * registry when node < 22 ("NodeVersionSupportWarning: The AWS SDK for JavaScript (v3) versions
 * published after the first week of January 2027 will require node >=22 ..."). Jest gives every
 * test file its own registry, so the same paragraph was printed once per suite that builds an SDK
 * client (about 12 times in `npm test`), burying real output. The README says when Node 20 support
 * ends; the CLI filters the same warning for its own process (cli/keyrot.cjs).
 *
 * Only that one warning is dropped: every other warning (and that one outside the tests) still shows.
 */
const emitWarning = process.emitWarning;
process.emitWarning = function emitWarningExceptSdkNodeSupport(warning, ...rest) {
  const text = typeof warning === 'string' ? warning : warning && warning.message;
  if (typeof text === 'string' && text.startsWith('NodeVersionSupportWarning:')) return;
  return emitWarning.call(this, warning, ...rest);
};
