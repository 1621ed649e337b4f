package hoststat

import (
	"fmt"
	"sync"

	"github.com/safchain/ethtool"
)

// Ethtool reads network devices' driver statistics through the ethtool ioctl
// (github.com/safchain/ethtool): the same names and values `ethtool -S`
// prints, such as ENA's bw_in_allowance_exceeded. Its zero value is ready;
// Close releases its socket.
type Ethtool struct {
	mu  sync.Mutex
	et  *ethtool.Ethtool
	err error
}

func (e *Ethtool) handle() (*ethtool.Ethtool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.et == nil && e.err == nil {
		e.et, e.err = ethtool.NewEthtool()
		if e.err != nil {
			e.err = fmt.Errorf("ethtool: %w", e.err)
		}
	}
	return e.et, e.err
}

// Stats returns dev's driver statistics by name.
func (e *Ethtool) Stats(dev string) (map[string]uint64, error) {
	et, err := e.handle()
	if err != nil {
		return nil, err
	}
	s, err := et.Stats(dev)
	if err != nil {
		return nil, fmt.Errorf("ethtool -S %s: %w", dev, err)
	}
	return s, nil
}

// Driver names dev's driver.
func (e *Ethtool) Driver(dev string) (string, error) {
	et, err := e.handle()
	if err != nil {
		return "", err
	}
	d, err := et.DriverName(dev)
	if err != nil {
		return "", fmt.Errorf("ethtool -i %s: %w", dev, err)
	}
	return d, nil
}

// Close releases the ioctl socket.
func (e *Ethtool) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.et != nil {
		e.et.Close()
		e.et = nil
	}
	return nil
}
