package daemon

// ParseCPUList is parseCPUList, for the daemon_test package.
var ParseCPUList = parseCPUList
