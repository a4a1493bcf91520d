/** Jest runs TypeScript through SWC (no type checking); `npm run typecheck` does that separately. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }],
  },
  testTimeout: 60000,
  // Drops only the AWS SDK's Node 20 support warning, printed once per suite otherwise (see the file).
  setupFiles: ['<rootDir>/test/drop-sdk-node-warning.js'],
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
