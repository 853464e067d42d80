package sqlredact

import "testing"

// BenchmarkRedact measures what the relay pays per recorded statement:
// the common case (no keyword: one scan, no copy) and a statement with a
// password (lexed and rewritten).
func BenchmarkRedact(b *testing.B) {
	for _, bc := range []struct {
		name string
		d    Dialect
		sql  string
	}{
		{"select", PostgreSQL, "SELECT c FROM sbtest1 WHERE id = $1"},
		{"pgbench update", PostgreSQL, "UPDATE pgbench_accounts SET abalance = abalance + 2817 WHERE aid = 47210;"},
		{"sysbench insert", MySQL, "INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)"},
		{"long where", MySQL, "SELECT id, customer, amount, created_at, updated_at, status, note FROM orders WHERE customer = 'x' " +
			"AND status IN ('open', 'paid', 'shipped') AND created_at > NOW() - INTERVAL 30 DAY ORDER BY created_at DESC LIMIT 100"},
		{"alter role", PostgreSQL, "ALTER ROLE app WITH LOGIN PASSWORD 'hunter2' VALID UNTIL 'infinity'"},
		{"identified by", MySQL, "CREATE USER 'app'@'%' IDENTIFIED BY 'hunter2'"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.sql)))
			b.ReportAllocs()
			for b.Loop() {
				Redact(bc.d, bc.sql)
			}
		})
	}
}
