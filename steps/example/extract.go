package example

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pipelinehq/pipeline/steps"
)

// OrdersFile is the file example.extract writes and example.transform reads.
const OrdersFile = "orders.csv"

// ordersHeader is the header row of OrdersFile.
var ordersHeader = []string{"order_id", "customer", "region", "amount"}

// Regions are the regions sample orders come from.
var Regions = []string{"central", "east", "north", "south", "west"}

// customers of the sample data, each with a home region (index mod regions).
var customers = []string{
	"Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries",
	"Wayne Enterprises", "Wonka Foods", "Tyrell", "Cyberdyne", "Soylent",
	"Aperture Labs", "Black Mesa", "Vandelay Imports", "Dunder Mifflin",
	"Pied Piper", "Gringotts", "Oscorp", "Monarch Supplies", "Bluth Company",
	"Prestige Worldwide", "Sterling Cooper", "Los Pollos", "Nakatomi", "Massive Dynamic",
}

const (
	defaultRows = 200
	maxRows     = 1_000_000
)

type extract struct {
	dataDir string
	rows    int
}

// newExtract builds example.extract. Setting rows (default 200) is the number
// of orders; the run or step param rows overrides it.
func newExtract(dataDir string, settings map[string]any) (steps.Step, error) {
	s := steps.ReadSettings(KindExtract, settings)
	e := &extract{dataDir: dataDir, rows: s.Int("rows", defaultRows, 1, maxRows)}
	if err := s.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

// Run writes orders.csv and returns {"file", "rows", "total"}.
func (e *extract) Run(ctx context.Context, in steps.Input) (json.RawMessage, error) {
	if err := checkCtx(ctx, KindExtract); err != nil {
		return nil, err
	}
	dir, err := RunDir(e.dataDir, in)
	if err != nil {
		return nil, err
	}
	rows := e.rows
	if p, ok := in.Params["rows"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > maxRows {
			return nil, steps.Permanent(fmt.Errorf("%s: param rows %q must be a whole number from 1 to %d", KindExtract, p, maxRows))
		}
		rows = n
	}
	data, total := sampleOrders(in.DateString(), rows)
	path := filepath.Join(dir, OrdersFile)
	if err := writeFileAtomic(path, data); err != nil {
		return nil, fmt.Errorf("%s: %w", KindExtract, err)
	}
	return output(map[string]any{"file": path, "rows": rows, "total": centsToFloat(total)})
}

// sampleOrders generates the CSV of a day of orders, the same for the same
// date and row count, and the sum of their amounts in cents.
func sampleOrders(date string, rows int) ([]byte, int64) {
	h := fnv.New64a()
	h.Write([]byte(date))
	seed := h.Sum64()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	// A few customers place most orders, as in real shops.
	pick := rand.NewZipf(rng, 1.3, 2, uint64(len(customers)-1))
	idPrefix := strings.ReplaceAll(date, "-", "")

	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(ordersHeader)
	var total int64
	for i := range rows {
		c := int(pick.Uint64())
		region := Regions[c%len(Regions)]
		if rng.IntN(10) == 0 { // some orders ship elsewhere
			region = Regions[rng.IntN(len(Regions))]
		}
		// Amounts from 5.00 up, mostly tens, now and then a large order.
		cents := 500 + int64(math.Round(rng.ExpFloat64()*6000))
		if rng.IntN(40) == 0 {
			cents += 50_000 + rng.Int64N(100_000)
		}
		total += cents
		w.Write([]string{fmt.Sprintf("%s-%05d", idPrefix, i+1), customers[c], region, formatCents(cents, false)})
	}
	w.Flush() // writes to a bytes.Buffer cannot fail
	return buf.Bytes(), total
}
