package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/tether-dev/tether/relay/store"
)

// dbEnv holds the database location when neither --db nor --db-file is
// given: a PostgreSQL URL with a password stays out of argv (which every
// user of the machine can read in ps).
const dbEnv = "TETHER_RELAY_DB"

// dbFlags are --db and --db-file, shared by every command that opens the
// database.
type dbFlags struct {
	db, file *string
}

func registerDBFlags(fs *flag.FlagSet) dbFlags {
	return dbFlags{
		db:   fs.String("db", "", "the database: sqlite:PATH or postgres://… (default: $"+dbEnv+", else sqlite: beside the secret file)"),
		file: fs.String("db-file", "", "a file (mode 0600) holding the database location: keeps a PostgreSQL password out of argv"),
	}
}

// location is the database location the flags (or the environment) name;
// "" means the default beside the secret file. A --db holding a password
// is used, with a warning.
func (d dbFlags) location(logger *slog.Logger) (string, error) {
	switch {
	case *d.db != "" && *d.file != "":
		return "", errors.New("--db and --db-file are alternatives: give one")
	case *d.db != "":
		if hasPassword(*d.db) {
			logger.Warn("--db holds a password, which any user of this machine can read in the process list; put the location in $" +
				dbEnv + " or in a file given as --db-file (mode 0600) instead")
		}
		return *d.db, nil
	case *d.file != "":
		b, err := os.ReadFile(*d.file)
		if err != nil {
			return "", fmt.Errorf("read --db-file: %w", err)
		}
		if err := checkPrivateMode(*d.file, "--db-file", "others could read the database password in it"); err != nil {
			return "", err
		}
		loc := strings.TrimSpace(string(b))
		if loc == "" {
			return "", fmt.Errorf("--db-file %s is empty", *d.file)
		}
		return loc, nil
	default:
		return strings.TrimSpace(os.Getenv(dbEnv)), nil
	}
}

// hasPassword reports whether a PostgreSQL location carries a password
// (postgres://user:PASSWORD@host/… or ?password=…).
func hasPassword(loc string) bool {
	if !strings.HasPrefix(loc, "postgres://") && !strings.HasPrefix(loc, "postgresql://") {
		return false
	}
	u, err := url.Parse(loc)
	if err != nil {
		return true // unparsable: assume the worst
	}
	if _, ok := u.User.Password(); ok {
		return true
	}
	return u.Query().Has("password")
}

// openStore opens the database the flags name (default: an SQLite file
// beside the secret file) and imports an older relay's token log once.
func openStore(ctx context.Context, db dbFlags, secretFile string, logger *slog.Logger) (*store.Store, error) {
	loc, err := db.location(logger)
	if err != nil {
		return nil, err
	}
	if loc == "" {
		loc = store.DefaultLocation(secretFile)
	}
	st, err := store.Open(ctx, loc)
	if err != nil {
		return nil, err
	}
	legacy := store.LegacyTokenFile(secretFile)
	imported, err := st.ImportLegacyTokenFile(ctx, legacy)
	if err != nil {
		st.Close()
		return nil, err
	}
	if imported {
		logger.Info("imported the token log into the database", "from", legacy, "renamed", legacy+".imported")
	}
	return st, nil
}

// backup writes a consistent copy of an SQLite database to OUT (VACUUM
// INTO: a live relay may keep writing). PostgreSQL has pg_dump for that.
func backup(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("backup", stderr)
	secretFile := fs.String("secret-file", "", "HMAC secret file (its folder holds the default database)")
	db := registerDBFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("backup: give the output file: tether-relay backup [--db LOCATION] OUT")
	}
	out := fs.Arg(0)
	loc, err := db.location(slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if loc == "" {
		if *secretFile == "" {
			return errors.New("backup: --db (or --db-file, $" + dbEnv + ") or --secret-file is required")
		}
		loc = store.DefaultLocation(*secretFile)
	}
	if !strings.HasPrefix(loc, "sqlite:") {
		return errors.New("backup: the database is PostgreSQL: back it up with pg_dump (e.g. pg_dump -Fc -f OUT DBNAME)")
	}
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		if err == nil {
			return fmt.Errorf("backup: %s exists already; give a new file", out)
		}
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(strings.TrimPrefix(loc, "sqlite:")); err != nil {
		return fmt.Errorf("backup: %w", err) // no database here: do not create an empty one
	}
	st, err := store.Open(ctx, loc)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer st.Close()
	if err := st.BackupSQLite(ctx, out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
