import { describeCrashSafety } from '../support/crash-safety.js';

describeCrashSafety(4);
