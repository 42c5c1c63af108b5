import { describeCrashSafety } from '../support/crash-safety.js';

// Longer than the default run: more kill -9 rounds, more concurrent writers.
describeCrashSafety(15, 6);
