package ids

import "testing"

func TestSerialsArePositiveShortAndDistinct(t *testing.T) {
	var s Source
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		n, err := s.NextSerial()
		if err != nil {
			t.Fatal(err)
		}
		if n.Sign() <= 0 {
			t.Fatalf("serial %x is not positive", n)
		}
		if len(n.Bytes()) > 20 {
			t.Fatalf("serial %x is longer than 20 octets", n)
		}
		if seen[n.Text(16)] {
			t.Fatalf("serial %x repeated", n)
		}
		seen[n.Text(16)] = true
	}
}
