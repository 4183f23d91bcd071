package boltledger_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/pipelinehq/pipeline/ledger/boltledger"
)

// BenchmarkCommit compares one 300-byte durable write through DB.Update (a
// commit each), DB.Batch (OpenDB's MaxBatchDelay) and the Committer, alone
// and with 50 concurrent writers, and reports writes/s.
func BenchmarkCommit(b *testing.B) {
	value := make([]byte, 300)
	bucket := []byte("bench")
	for _, writers := range []int{1, 50} {
		for _, how := range []string{"Update", "Batch", "Committer"} {
			b.Run(fmt.Sprintf("%s/writers=%d", how, writers), func(b *testing.B) {
				db, err := boltledger.OpenDB(filepath.Join(b.TempDir(), "bench.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
					b.Fatal(err)
				}
				write := map[string]func(func(*bbolt.Tx) error) error{
					"Update": db.Update, "Batch": db.Batch, "Committer": boltledger.NewCommitter(db).Batch,
				}[how]
				put := func(key []byte) func(*bbolt.Tx) error {
					return func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put(key, value) }
				}
				if writers == 1 { // RunParallel would start GOMAXPROCS writers
					for b.Loop() {
						if err := write(put([]byte("k"))); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
					return
				}
				var seq atomic.Int64
				b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					key := fmt.Appendf(nil, "k%d", seq.Add(1))
					for pb.Next() {
						if err := write(put(key)); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			})
		}
	}
}
