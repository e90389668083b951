package ingest

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/citecrawl/citecrawl/retry"
)

// A crawler must not be turned against the network it runs in: a hub, a
// discovered link or a redirect naming http://169.254.169.254/ or an
// intranet host would otherwise be fetched, and its answer published. So
// only http and https URLs are followed, and every connection's address is
// checked when it is made, after DNS (a name that resolves to a public
// address when checked and to a private one when dialled cannot slip
// through), unless fetch.allow_private or fetch.allow_addresses say
// otherwise.

// CheckURL refuses, permanently, a URL that is not absolute http or https.
func CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return retry.Permanentf("URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return retry.Permanentf("URL %q: only http and https URLs are crawled, not %q", rawURL, u.Scheme)
	}
	if u.Host == "" {
		return retry.Permanentf("URL %q: no host", rawURL)
	}
	return nil
}

// metadataAddrs are cloud instance-metadata endpoints (AWS, GCP, Azure,
// OpenStack on IPv4; AWS on IPv6): they hand out credentials.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
}

// uniqueLocal is fc00::/7 (netip's IsPrivate covers it too; named here for
// the error message).
var uniqueLocal = netip.MustParsePrefix("fc00::/7")

// refusedKind says why an address may not be crawled ("" if it may).
func refusedKind(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case containsAddr(metadataAddrs, a):
		return "cloud metadata"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case uniqueLocal.Contains(a):
		return "unique-local"
	case a.IsPrivate():
		return "private"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	// Carrier-grade NAT (100.64.0.0/10) is shared address space, not the
	// internet.
	if a.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(a) {
		return "shared (carrier-grade NAT)"
	}
	return ""
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// ParseAllowAddresses reads fetch.allow_addresses: IP addresses or CIDR
// prefixes (127.0.0.1, 10.0.0.0/8, ::1).
func ParseAllowAddresses(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("fetch.allow_addresses: %q is neither an IP address nor a CIDR prefix like 10.0.0.0/8", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// addressGuard is the dialer's Control: it sees the address actually being
// connected to, after DNS.
type addressGuard struct {
	allowPrivate bool
	allow        []netip.Prefix
}

func newAddressGuard(cfg FetchConfig) addressGuard {
	allow, _ := ParseAllowAddresses(cfg.AllowAddresses) // checked by the config's validation
	return addressGuard{allowPrivate: cfg.AllowPrivate, allow: allow}
}

func (g addressGuard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return retry.Permanentf("connecting to %s: not an IP address and port", address)
	}
	return g.check(ap.Addr())
}

func (g addressGuard) check(a netip.Addr) error {
	a = a.Unmap()
	if g.allowPrivate {
		return nil
	}
	for _, p := range g.allow {
		if p.Contains(a) {
			return nil
		}
	}
	if kind := refusedKind(a); kind != "" {
		return retry.Permanentf("address %s is %s: refused (set fetch.allow_private=true, or list it in fetch.allow_addresses, to crawl it)", a, kind)
	}
	return nil
}

// dialer is a net.Dialer that refuses the addresses the guard refuses.
func (g addressGuard) dialer() *net.Dialer {
	return &net.Dialer{Control: g.control}
}
