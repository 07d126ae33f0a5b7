package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"confab.dev/confab/internal/callbridge/accounts"
	"confab.dev/confab/internal/callbridge/users"
	"confab.dev/confab/internal/config"
	"confab.dev/confab/internal/launch"
	"confab.dev/confab/internal/secret"
	"confab.dev/confab/internal/store"
)

// callBridgeFlags reads `confab callbridge` flags over the config file's settings.
type callBridgeFlags struct {
	path, dataDir, api, web, logFormat, logLevel string
}

func (f *callBridgeFlags) register(fs *flag.FlagSet, serve bool) {
	fs.StringVar(&f.path, "config", "", "configuration file (TOML)")
	fs.StringVar(&f.dataDir, "data", "", "data directory: store and generated certificates (default confab-data)")
	if serve {
		fs.StringVar(&f.api, "api", "", "REST API and web admin listener, HTTPS (default :8445)")
		fs.StringVar(&f.web, "web", "", "browser app listener, HTTPS (default :8443)")
		fs.StringVar(&f.logFormat, "log-format", "", "log format: text or json")
		fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn, error")
	}
}

func (f *callBridgeFlags) load() (config.CallBridge, error) {
	var c config.CallBridge
	if f.path != "" {
		if err := config.Load(f.path, &c); err != nil {
			return c, err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.DataDir, f.dataDir)
	set(&c.Listen.API, f.api)
	set(&c.Listen.Web, f.web)
	set(&c.Log.Format, f.logFormat)
	set(&c.Log.Level, f.logLevel)
	c = c.WithDefaults()
	return c, c.Validate()
}

func runCallBridge(ctx context.Context, args []string, io stdio) error {
	if len(args) > 0 && args[0] == "api-user" {
		return runAPIUser(ctx, args[1:], io)
	}
	if len(args) > 0 && args[0] == "user" {
		return runUser(ctx, args[1:], io)
	}
	fs := flag.NewFlagSet("confab callbridge", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f callBridgeFlags
	f.register(fs, true)
	fs.Usage = func() {
		fmt.Fprintln(io.err, "usage: confab callbridge [flags]\n       confab callbridge api-user add|list|del NAME [flags]\n       confab callbridge user add|list|del NAME [flags]\n\nRuns the Call Bridge. Its XMPP settings are set through the REST API or the web admin.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	log := newLogger(io.err, cfg.Log)
	launch.Version = version
	cb, err := launch.StartCallBridge(ctx, cfg, log, launch.CallBridgeOptions{})
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-cb.Failed():
	}
	err = shutdown(cb.Shutdown)
	log.Info("Call Bridge stopped")
	return errors.Join(cb.Err(), err)
}

// runAPIUser manages the accounts of the REST API and the web admin.
func runAPIUser(ctx context.Context, args []string, io stdio) error {
	usage := "usage: confab callbridge api-user add NAME | list | del NAME [-config FILE] [-data DIR]\n(add reads the password from standard input; an empty line generates one)"
	if len(args) == 0 {
		return &exitError{2, errors.New(usage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("confab callbridge api-user "+verb, flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f callBridgeFlags
	f.register(fs, false)
	name, err := parseVerb(fs, args[1:])
	if err != nil {
		return err
	}
	st, err := f.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "add":
		if name == "" {
			return &exitError{2, errors.New(usage)}
		}
		pw, generated := readPassword(io.in)
		if err := accounts.Add(ctx, st, name, pw); err != nil {
			if errors.Is(err, store.ErrExists) {
				return fmt.Errorf("API user %q already exists", name)
			}
			return err
		}
		fmt.Fprintf(io.out, "API user %s added\n", name)
		if generated {
			fmt.Fprintf(io.out, "password: %s\n", pw)
		}
		return nil
	case "list":
		names, err := st.ListAPIUsers(ctx)
		if err != nil {
			return err
		}
		for _, n := range names {
			fmt.Fprintln(io.out, n)
		}
		return nil
	case "del":
		if name == "" {
			return &exitError{2, errors.New(usage)}
		}
		if err := st.DeleteAPIUser(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(io.out, "API user %s deleted\n", name)
		return nil
	}
	return &exitError{2, fmt.Errorf("unknown verb %q\n%s", verb, usage)}
}

// runUser manages local users: the people who sign in to the web app.
func runUser(ctx context.Context, args []string, io stdio) error {
	usage := "usage: confab callbridge user add NAME [-display-name N] [-email E] | list | del NAME [-config FILE] [-data DIR]\n(add reads the password from standard input; an empty line generates one)"
	if len(args) == 0 {
		return &exitError{2, errors.New(usage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("confab callbridge user "+verb, flag.ContinueOnError)
	fs.SetOutput(io.err)
	var f callBridgeFlags
	f.register(fs, false)
	display := fs.String("display-name", "", "the name shown in meetings")
	email := fs.String("email", "", "e-mail address")
	name, err := parseVerb(fs, args[1:])
	if err != nil {
		return err
	}
	st, err := f.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := users.New(users.Options{Store: st})
	defer svc.Close()
	switch verb {
	case "add":
		if name == "" {
			return &exitError{2, errors.New(usage)}
		}
		pw, generated := readPassword(io.in)
		u, err := svc.CreateLocal(ctx, users.LocalUser{Username: name, Name: *display, Email: *email}, secret.New(pw))
		if err != nil {
			return err
		}
		fmt.Fprintf(io.out, "user %s added (id %s)\n", u.JID, u.ID)
		if generated {
			fmt.Fprintf(io.out, "password: %s\n", pw)
		}
		return nil
	case "list":
		us, total, err := svc.List(ctx, "", 0, 0)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JID\tNAME\tEMAIL\tKIND")
		for _, u := range us {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.JID, u.Name, u.Email, u.Kind)
		}
		tw.Flush()
		fmt.Fprintf(io.out, "%d users\n", total)
		return nil
	case "del":
		if name == "" {
			return &exitError{2, errors.New(usage)}
		}
		jid := name
		if !strings.Contains(jid, "@") {
			xc, err := st.XMPPSettings(ctx)
			if err != nil {
				return err
			}
			jid += "@" + xc.Domain
		}
		u, err := svc.GetByJID(ctx, jid)
		if err != nil {
			return fmt.Errorf("user %s: %w", jid, err)
		}
		if err := svc.Delete(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(io.out, "user %s deleted\n", u.JID)
		return nil
	}
	return &exitError{2, fmt.Errorf("unknown verb %q\n%s", verb, usage)}
}

// openStore opens the Call Bridge's store named by the flags and the config file.
func (f *callBridgeFlags) openStore(ctx context.Context) (*store.Store, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, store.Options{DSN: cfg.Store})
}

// readPassword reads a password line from in; an empty line gets a generated one (26 base32
// characters, 128 bits), and generated says so.
func readPassword(in io.Reader) (pw string, generated bool) {
	line, _ := bufio.NewReader(in).ReadString('\n')
	if pw = strings.TrimRight(line, "\r\n"); pw != "" {
		return pw, false
	}
	return rand.Text(), true
}
