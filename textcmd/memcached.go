package textcmd

// Memcached is the grammar of memcached's text protocol: the storage
// commands carry their byte count in their fourth argument, VALUE lines in
// their third, and VALUE and STAT lines continue a response that END (or
// any other status) closes.
var Memcached = Grammar{CountArg: memcachedCountArg, Continues: memcachedContinues}

func memcachedCountArg(name []byte) int {
	switch string(name) {
	case "set", "add", "replace", "append", "prepend", "cas":
		return 3
	case "VALUE":
		return 2
	}
	return -1
}

func memcachedContinues(status []byte) bool {
	switch string(status) {
	case "VALUE", "STAT":
		return true
	}
	return false
}
