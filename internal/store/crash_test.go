package store

// crashChildEnv marks the child process of TestCrashKill9.
const crashChildEnv = "ROCKETRY_STORE_CRASH_CHILD"
