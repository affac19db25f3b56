package radsec

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/tunterm/tunterm/control/api"
	"github.com/tunterm/tunterm/control/config"
)

// Service is what `tunterm run` and `tunterm radsec` run besides the
// dataplane: the management server and, when configured, the RadSec proxy
// with its metrics and /debug/radsec page. Not safe for concurrent use:
// one control goroutine starts, reloads and closes it.
type Service struct {
	log        *slog.Logger
	api        *api.Server
	proxy      *Proxy
	unregister func()
	mgmt       config.Management
}

// StartService starts the management server (c.Management) and the RadSec
// proxy (c.RadSec, when set). A management server that cannot listen on
// the default address is a warning; on an address from the file it is an
// error, as is any proxy failure. On error everything started is stopped.
func StartService(c *config.Config, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Service{log: log, api: api.New(log), mgmt: c.Management}
	if c.RadSec != nil {
		if err := s.startProxy(c.RadSec); err != nil {
			return nil, err
		}
	}
	if err := s.api.Start(c.Management); err != nil {
		if c.Management.Explicit {
			s.Close()
			return nil, err
		}
		log.Warn("management server not started (set management.listen, or off)", "err", err)
	}
	return s, nil
}

func (s *Service) startProxy(rc *config.RadSec) error {
	p, err := New(rc, s.log, Options{})
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		p.Close()
		return err
	}
	s.proxy = p
	s.unregister = s.api.Register(p)
	s.api.HandleDebug("radsec", "RadSec proxy: AP connections, RADIUS servers, drops (?aps=all)",
		func(r *http.Request) api.Page { return p.Report(r.URL.Query().Get("aps") == "all") })
	return nil
}

// API is the management server, for other subsystems' pages and metrics.
func (s *Service) API() *api.Server { return s.api }

// Proxy is the RadSec proxy, nil when not configured.
func (s *Service) Proxy() *Proxy { return s.proxy }

// Reload applies c: the proxy reloads (or starts, or stops when radsec was
// removed). Management changes take effect at restart. Errors are logged
// and keep the running configuration.
func (s *Service) Reload(c *config.Config) {
	if c.Management.Listen != s.mgmt.Listen {
		s.log.Warn("reload: management.listen takes effect at restart", "running", s.mgmt.Listen, "configured", c.Management.Listen)
	}
	switch {
	case c.RadSec == nil && s.proxy != nil:
		s.stopProxy()
		s.log.Info("radsec: stopped (no radsec section any more)")
	case c.RadSec != nil && s.proxy == nil:
		if err := s.startProxy(c.RadSec); err != nil {
			s.log.Error("reload: RadSec proxy not started", "err", err)
		}
	case c.RadSec != nil:
		if err := s.proxy.Reload(c.RadSec); err != nil {
			s.log.Error("reload: RadSec proxy keeps its running configuration", "err", err)
		}
	}
}

func (s *Service) stopProxy() {
	s.api.RemoveDebug("radsec")
	s.unregister()
	s.proxy.Close()
	s.proxy = nil
}

// Close stops the proxy and the management server.
func (s *Service) Close() {
	if s.proxy != nil {
		s.stopProxy()
	}
	s.api.Close()
}

// Check loads rc's certificates and keys (what `tunterm check` can verify
// without opening sockets) and summarises the proxy in one line.
func Check(rc *config.RadSec) (string, error) {
	ts, err := loadTLS(rc)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("listen %s, certificate %q expires %s, %d AP CA certificates, %d auth and %d acct servers",
		rc.ListenAddr, ts.cert.Subject, ts.cert.NotAfter.Format("2006-01-02"), len(ts.cas),
		len(rc.AuthServers), len(rc.AcctServers)), nil
}
