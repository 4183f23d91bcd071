package example

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/pipelinehq/pipeline/steps"
)

// SummaryFile is the default file example.transform writes.
const SummaryFile = "summary.json"

// Summary is the content of a summary file.
type Summary struct {
	Pipeline string `json:"pipeline"`
	Date     string `json:"date"`
	RunID    string `json:"run_id"`
	Source   string `json:"source"`
	// Regions is the region filter, empty for all regions.
	Regions      []string        `json:"regions,omitempty"`
	Orders       int             `json:"orders"`
	Total        float64         `json:"total"`
	ByRegion     []RegionTotal   `json:"by_region"`
	TopCustomers []CustomerTotal `json:"top_customers"`
}

// RegionTotal is the orders of one region.
type RegionTotal struct {
	Region string  `json:"region"`
	Orders int     `json:"orders"`
	Total  float64 `json:"total"`
}

// CustomerTotal is the orders of one customer.
type CustomerTotal struct {
	Customer string  `json:"customer"`
	Orders   int     `json:"orders"`
	Total    float64 `json:"total"`
}

type transform struct {
	dataDir string
	output  string
	regions []string
	top     int
}

// newTransform builds example.transform. Settings: output (file name,
// default summary.json), regions (only orders from these), top (how many top
// customers, default 5).
func newTransform(dataDir string, settings map[string]any) (steps.Step, error) {
	s := steps.ReadSettings(KindTransform, settings)
	t := &transform{
		dataDir: dataDir,
		output:  fileSetting(s, "output", SummaryFile),
		regions: s.Strings("regions"),
		top:     s.Int("top", 5, 1, 100),
	}
	if s.Has("regions") && len(t.regions) == 0 {
		s.Problemf("regions must list at least one region (or be left out)")
	}
	for _, r := range t.regions {
		if !slices.Contains(Regions, r) {
			s.Problemf("regions: unknown region %q (known: %v)", r, Regions)
		}
	}
	if t.output == OrdersFile {
		s.Problemf("output must not overwrite the input %s", OrdersFile)
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// Run writes the summary and returns {"summary", "orders", "total"}.
func (t *transform) Run(ctx context.Context, in steps.Input) (json.RawMessage, error) {
	if err := checkCtx(ctx, KindTransform); err != nil {
		return nil, err
	}
	dir, err := RunDir(t.dataDir, in)
	if err != nil {
		return nil, err
	}
	src := filepath.Join(dir, OrdersFile)
	data, err := readInput(KindTransform, src)
	if err != nil {
		return nil, err
	}
	sum, err := t.summarize(src, data)
	if err != nil {
		return nil, steps.Permanent(fmt.Errorf("%s: %w", KindTransform, err))
	}
	sum.Pipeline, sum.Date, sum.RunID = in.Pipeline, in.DateString(), in.RunID
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%s: encoding summary: %w", KindTransform, err)
	}
	path := filepath.Join(dir, t.output)
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return nil, fmt.Errorf("%s: %w", KindTransform, err)
	}
	return output(map[string]any{"summary": path, "orders": sum.Orders, "total": sum.Total})
}

type acc struct {
	orders int
	cents  int64
}

func add(m map[string]*acc, key string, cents int64) {
	a := m[key]
	if a == nil {
		a = &acc{}
		m[key] = a
	}
	a.orders++
	a.cents += cents
}

// summarize totals the orders CSV; errors name the file and line.
func (t *transform) summarize(path string, data []byte) (*Summary, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = len(ordersHeader)
	r.ReuseRecord = true
	head, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s is empty", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !slices.Equal(head, ordersHeader) {
		return nil, fmt.Errorf("%s: header is %q, want %q", path, head, ordersHeader)
	}
	regions := map[string]*acc{}
	custs := map[string]*acc{}
	var total int64
	var orders int
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		customer, region := rec[1], rec[2]
		if rec[0] == "" || customer == "" || region == "" {
			return nil, fmt.Errorf("%s:%d: empty field in %q", path, line, rec)
		}
		cents, err := parseCents(rec[3])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if len(t.regions) > 0 && !slices.Contains(t.regions, region) {
			continue
		}
		add(regions, region, cents)
		add(custs, customer, cents)
		orders++
		total += cents
	}
	sum := &Summary{Source: OrdersFile, Regions: t.regions, Orders: orders, Total: centsToFloat(total),
		ByRegion: []RegionTotal{}, TopCustomers: []CustomerTotal{}}
	for name, a := range regions {
		sum.ByRegion = append(sum.ByRegion, RegionTotal{Region: name, Orders: a.orders, Total: centsToFloat(a.cents)})
	}
	slices.SortFunc(sum.ByRegion, func(a, b RegionTotal) int { return cmp.Compare(a.Region, b.Region) })
	for name, a := range custs {
		sum.TopCustomers = append(sum.TopCustomers, CustomerTotal{Customer: name, Orders: a.orders, Total: centsToFloat(a.cents)})
	}
	slices.SortFunc(sum.TopCustomers, func(a, b CustomerTotal) int {
		return cmp.Or(-cmp.Compare(a.Total, b.Total), cmp.Compare(a.Customer, b.Customer))
	})
	sum.TopCustomers = sum.TopCustomers[:min(t.top, len(sum.TopCustomers))]
	return sum, nil
}
