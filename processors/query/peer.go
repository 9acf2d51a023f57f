package query

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultPeerAllow is the allowlist when none is configured: loopback only,
// as the servers listen on 127.0.0.1 unless told otherwise.
const DefaultPeerAllow = "127.0.0.0/8,::1/128"

// errOutside marks an address the allowlist refuses.
var errOutside = errors.New("outside --peer-allow")

// Allowlist is the set of addresses this instance passes requests on to.
// The addresses come from the query-endpoints topic, which whoever may write
// to it controls: without a list, that writer chooses where requests go.
type Allowlist struct {
	nets  []netip.Prefix
	hosts map[string]bool // host:port entries, lower case, matched as written
}

// ParseAllowlist reads allowlist entries: CIDRs (10.0.0.0/8), single IPs,
// or host:port (api-2.internal:8089, matched exactly against the advertised
// URL and then resolved as usual). No entry allows no address.
func ParseAllowlist(entries []string) (*Allowlist, error) {
	a := &Allowlist{hosts: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			a.nets = append(a.nets, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(e); err == nil {
			a.nets = append(a.nets, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		host, port, err := net.SplitHostPort(e)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("--peer-allow entry %q is neither a CIDR (10.0.0.0/8), an IP nor host:port (api-2.internal:8089): fix it", e)
		}
		a.hosts[strings.ToLower(net.JoinHostPort(host, port))] = true
	}
	return a, nil
}

func defaultAllowlist() *Allowlist {
	a, err := ParseAllowlist(strings.Split(DefaultPeerAllow, ","))
	if err != nil {
		panic(err) // a constant list
	}
	return a
}

func (a *Allowlist) contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// dialAddrs are the addresses to connect to for hostport, or an error when
// the allowlist refuses it. A name is resolved here and the addresses found
// are returned, so that the connection goes to an address that was checked
// and not to what a second lookup might say.
func (a *Allowlist) dialAddrs(ctx context.Context, hostport string) ([]string, error) {
	if a.hosts[strings.ToLower(hostport)] {
		return []string{hostport}, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", hostport, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !a.contains(ip) {
			return nil, fmt.Errorf("%s is %w", hostport, errOutside)
		}
		return []string{hostport}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", host, err)
	}
	var out []string
	for _, ip := range ips {
		// One address outside is enough to refuse: the name is not one the
		// operator's networks account for.
		if !a.contains(ip) {
			return nil, fmt.Errorf("%s resolves to %s, %w", host, ip, errOutside)
		}
		out = append(out, net.JoinHostPort(ip.Unmap().String(), port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s resolves to no address", host)
	}
	return out, nil
}

// checkPeerURL refuses an advertised URL this instance must not contact:
// not http(s), with credentials in it, or outside the allowlist.
func (a *Allowlist) checkPeerURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: not an http(s)://host:port URL", errOutside)
	}
	_, err = a.dialAddrs(ctx, hostPort(u))
	return err
}

// hostPort is the host and port u connects to, the port filled from the
// scheme when absent.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// peerClient is the client that passes requests on: it connects only to
// addresses the allowlist accepts (checked again at connection time, after
// resolution), ignores proxy settings (a proxy would be contacted instead of
// the checked address), follows no redirects (a peer could send the request
// elsewhere) and, for https peers, trusts roots when given (else the
// system's).
func peerClient(allow *Allowlist, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				addrs, err := allow.dialAddrs(ctx, addr)
				if err != nil {
					return nil, err
				}
				var errs []error
				for _, a := range addrs {
					c, err := d.DialContext(ctx, network, a)
					if err == nil {
						return c, nil
					}
					errs = append(errs, err)
				}
				return nil, errors.Join(errs...)
			},
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
