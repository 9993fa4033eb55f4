package store

import (
	"context"
)

// DeviceCodeByUserCode returns the device authorization whose user code
// is userCode (the code a person types on the approval page), or
// ErrNotFound.
func (s *Store) DeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error) {
	var hash string
	err := s.db.QueryRowContext(ctx, s.q("SELECT device_hash FROM device_codes WHERE user_code = ?"), userCode).Scan(&hash)
	if err != nil {
		return DeviceCode{}, lookupErr("device code by user code", err)
	}
	return s.DeviceCode(ctx, hash)
}
