// Package kernel reads the kernel's own view of the clock's quality:
// adjtimex(2) with no modes set, which only reads. The kernel knows
// whether the clock is synchronised (STA_UNSYNC, cleared by the NTP daemon
// that disciplines it), the maximum and estimated error the daemon last
// told it (maxerror grows by 500 ppm each second until the next update),
// and a pending leap second. It does not know the offset from UTC: that is
// the daemon's, so a kernel Reading's Offset is zero.
//
// It is Linux's interface; elsewhere Read returns an error.
package kernel
