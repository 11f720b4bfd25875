import { defineConfig } from 'vitest/config';

// Three tiers, one command: `npm test` runs them all. Integration and end-to-end tests need root,
// loop devices and moto_server; they are not skipped when those are missing, they fail with a
// message that says what to install (CI is root and installs everything).
export default defineConfig({
  test: {
    restoreMocks: true,
    // The AWS SDK prints a notice about Node 20 support on every worker; it says nothing about us.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    unstubEnvs: true,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integ',
          include: ['test/integ/**/*.test.ts'],
          // Loop devices, mounts and locks are machine-wide: run these files one at a time.
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
        },
      },
    ],
  },
});
