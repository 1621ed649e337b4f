package hoststat

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// settingNames are the kernel settings Settings reads, by sysctl name.
var settingNames = []string{
	"net.core.somaxconn",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_tw_reuse",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_max_syn_backlog",
	"net.ipv4.tcp_max_tw_buckets",
	"net.ipv4.tcp_syncookies",
	"fs.file-max",
	"fs.nr_open",
	"net.netfilter.nf_conntrack_max",
}

// Settings reads the kernel settings that bound connections from the procfs at
// root, keyed by sysctl name: a single number as int64, several (the port range)
// as []int64, anything else as its text. Settings the kernel lacks are left out.
func Settings(root string) map[string]any {
	if root == "" {
		root = DefaultRoot
	}
	out := map[string]any{}
	for _, name := range settingNames {
		b, err := os.ReadFile(filepath.Join(root, "sys", strings.ReplaceAll(name, ".", "/")))
		if err != nil {
			continue
		}
		out[name] = parseSetting(string(b))
	}
	return out
}

func parseSetting(text string) any {
	f := strings.Fields(text)
	nums := make([]int64, 0, len(f))
	for _, x := range f {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return strings.TrimSpace(text)
		}
		nums = append(nums, n)
	}
	switch len(nums) {
	case 0:
		return strings.TrimSpace(text)
	case 1:
		return nums[0]
	}
	return nums
}

// SettingInt returns settings[name] as a number when it is a single one.
func SettingInt(settings map[string]any, name string) (int64, bool) {
	v, ok := settings[name].(int64)
	return v, ok
}
