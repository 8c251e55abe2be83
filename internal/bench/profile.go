package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"slices"
	"strings"
)

// This file reads the few parts of a runtime/pprof CPU profile the bench
// needs (sample values, their labels, the leaf function of each sample),
// decoding the protocol buffer by hand: google/pprof's parser is not a
// dependency of the project. Field numbers are those of profile.proto.

// cpuProfile is a decoded CPU profile.
type cpuProfile struct {
	// samples with their CPU time in nanoseconds.
	samples []profSample
}

type profSample struct {
	nanos  int64
	labels map[string]string
	leaf   string // innermost function
}

var errProfile = errors.New("bench: malformed CPU profile")

// parseProfile decodes a gzip-compressed profile as pprof.StartCPUProfile
// writes it.
func parseProfile(gz []byte) (*cpuProfile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, errProfile
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, errProfile
	}
	type rawSample struct {
		locs   []uint64
		values []int64
		labels [][2]int64
	}
	var (
		strs        []string
		sampleTypes [][2]int64 // type, unit
		samples     []rawSample
		locFunc     = map[uint64]uint64{} // location id -> innermost function id
		funcName    = map[uint64]int64{}  // function id -> name string index
	)
	err = fields(raw, func(num int, wire int, v uint64, b []byte) error {
		switch num {
		case 1: // sample_type
			var t [2]int64
			if err := fields(b, func(n, _ int, v uint64, _ []byte) error {
				if n == 1 || n == 2 {
					t[n-1] = int64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			sampleTypes = append(sampleTypes, t)
		case 2: // sample
			var s rawSample
			if err := fields(b, func(n, w int, v uint64, bb []byte) error {
				switch n {
				case 1:
					return repeated(w, v, bb, func(x uint64) { s.locs = append(s.locs, x) })
				case 2:
					return repeated(w, v, bb, func(x uint64) { s.values = append(s.values, int64(x)) })
				case 3:
					var l [2]int64
					if err := fields(bb, func(n, _ int, v uint64, _ []byte) error {
						if n == 1 || n == 2 {
							l[n-1] = int64(v)
						}
						return nil
					}); err != nil {
						return err
					}
					s.labels = append(s.labels, l)
				}
				return nil
			}); err != nil {
				return err
			}
			samples = append(samples, s)
		case 4: // location
			var id, fn uint64
			first := true
			if err := fields(b, func(n, _ int, v uint64, bb []byte) error {
				switch n {
				case 1:
					id = v
				case 4: // line: the first is the innermost (inlined) function
					if first {
						first = false
						return fields(bb, func(n, _ int, v uint64, _ []byte) error {
							if n == 1 {
								fn = v
							}
							return nil
						})
					}
				}
				return nil
			}); err != nil {
				return err
			}
			locFunc[id] = fn
		case 5: // function
			var id uint64
			var name int64
			if err := fields(b, func(n, _ int, v uint64, _ []byte) error {
				switch n {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			}); err != nil {
				return err
			}
			funcName[id] = name
		case 6: // string_table
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i < 0 || i >= int64(len(strs)) {
			return ""
		}
		return strs[i]
	}
	// CPU profiles carry (samples, count) and (cpu, nanoseconds).
	vi := -1
	for i, t := range sampleTypes {
		if str(t[1]) == "nanoseconds" {
			vi = i
		}
	}
	if vi < 0 {
		return nil, errProfile
	}
	p := &cpuProfile{}
	for _, s := range samples {
		if vi >= len(s.values) {
			return nil, errProfile
		}
		ps := profSample{nanos: s.values[vi], labels: map[string]string{}}
		for _, l := range s.labels {
			ps.labels[str(l[0])] = str(l[1])
		}
		if len(s.locs) > 0 {
			ps.leaf = str(funcName[locFunc[s.locs[0]]])
		}
		p.samples = append(p.samples, ps)
	}
	return p, nil
}

// fields calls f for each field of the protocol buffer message b: v is the
// value of varint and fixed fields, bb the bytes of length-delimited ones.
func fields(b []byte, f func(num, wire int, v uint64, bb []byte) error) error {
	for len(b) > 0 {
		key, n := uvarint(b)
		if n <= 0 {
			return errProfile
		}
		b = b[n:]
		num, wire := int(key>>3), int(key&7)
		var v uint64
		var bb []byte
		switch wire {
		case 0:
			v, n = uvarint(b)
			if n <= 0 {
				return errProfile
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errProfile
			}
			for i := 7; i >= 0; i-- {
				v = v<<8 | uint64(b[i])
			}
			b = b[8:]
		case 2:
			l, n := uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errProfile
			}
			bb = b[n : n+int(l)]
			b = b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errProfile
			}
			v = uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24
			b = b[4:]
		default:
			return errProfile
		}
		if err := f(num, wire, v, bb); err != nil {
			return err
		}
	}
	return nil
}

// repeated reads a repeated scalar field, packed or not.
func repeated(wire int, v uint64, b []byte, add func(uint64)) error {
	if wire != 2 {
		add(v)
		return nil
	}
	for len(b) > 0 {
		x, n := uvarint(b)
		if n <= 0 {
			return errProfile
		}
		add(x)
		b = b[n:]
	}
	return nil
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// CPUShare is how a load phase's sampled CPU time divides between the
// parts of the bench process.
type CPUShare struct {
	// Samples is the profile's total CPU time, in seconds.
	Seconds float64 `json:"seconds"`
	// Components: bridge, client, idp, vendor, and "unattributed" (garbage
	// collection, the scheduler and other runtime work that runs on no
	// labelled goroutine), as fractions of Seconds.
	Components map[string]float64 `json:"components"`
	// BridgeEndpoints divides the bridge's share by endpoint ("http" is
	// connection handling outside any handler), as fractions of Seconds.
	BridgeEndpoints map[string]float64 `json:"bridge_endpoints"`
	// TopBridge are the functions where the bridge spends most CPU (flat,
	// as fractions of the bridge's own time).
	TopBridge []FuncShare `json:"top_bridge"`
}

// FuncShare is one function's share of CPU time.
type FuncShare struct {
	Func  string  `json:"func"`
	Share float64 `json:"share"`
}

const unattributed = "unattributed"

func (p *cpuProfile) shares(top int) CPUShare {
	var total, bridge int64
	comp := map[string]int64{}
	eps := map[string]int64{}
	funcs := map[string]int64{}
	for _, s := range p.samples {
		total += s.nanos
		c := s.labels[labelComponent]
		if c == "" {
			c = unattributed
		}
		comp[c] += s.nanos
		if c == compBridge {
			bridge += s.nanos
			eps[s.labels[labelEndpoint]] += s.nanos
			funcs[s.leaf] += s.nanos
		}
	}
	out := CPUShare{Seconds: float64(total) / 1e9, Components: map[string]float64{}, BridgeEndpoints: map[string]float64{}}
	if total == 0 {
		return out
	}
	for c, n := range comp {
		out.Components[c] = float64(n) / float64(total)
	}
	for e, n := range eps {
		out.BridgeEndpoints[e] = float64(n) / float64(total)
	}
	for f, n := range funcs {
		out.TopBridge = append(out.TopBridge, FuncShare{Func: f, Share: float64(n) / float64(bridge)})
	}
	slices.SortFunc(out.TopBridge, func(a, b FuncShare) int {
		if a.Share != b.Share {
			if a.Share > b.Share {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Func, b.Func)
	})
	if len(out.TopBridge) > top {
		out.TopBridge = out.TopBridge[:top]
	}
	return out
}
