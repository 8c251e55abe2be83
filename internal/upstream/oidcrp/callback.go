package oidcrp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/skolbro/skolbro/internal/mapping"
	"github.com/skolbro/skolbro/internal/store"
)

// statePattern matches the states StartLogin makes; anything else cannot
// be one of ours and is not looked up.
var statePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// Result is what the bridge takes from a verified ID token.
type Result struct {
	// Subject is the ID token's sub.
	Subject string
	// Claims holds every string, number, boolean and array-of-those claim
	// of the ID token, as strings (numbers as written, booleans as
	// true/false). Objects, nulls and arrays holding them are left out.
	Claims map[string][]string
	// AuthnInstant is auth_time; zero when the IdP did not send it.
	AuthnInstant time.Time
	// AuthnContext is acr; empty when the IdP did not send it.
	AuthnContext string
	// AMR are the amr values (RFC 8176), e.g. Entra ID's "mfa".
	AMR []string
}

// Input returns the result as input to package mapping, with the claims
// as attributes.
func (r *Result) Input() mapping.Input {
	attrs := make(map[string][]string, len(r.Claims))
	for k, v := range r.Claims {
		attrs[k] = slices.Clone(v)
	}
	return mapping.Input{
		Subject:      r.Subject,
		Attributes:   attrs,
		AuthnInstant: r.AuthnInstant,
		AuthnContext: r.AuthnContext,
		AMR:          slices.Clone(r.AMR),
	}
}

// HandleCallback validates the IdP's authorization response (the query of
// r, response_mode query) for the browser identified by binding, redeems
// the code and verifies the ID token. It returns the result and the state
// given to StartLogin. Every refusal is an *Error.
func (rp *RP) HandleCallback(ctx context.Context, r *http.Request, binding string) (*Result, []byte, error) {
	res, state, e := rp.handle(ctx, r, binding)
	if e != nil {
		return nil, nil, e
	}
	return res, state, nil
}

// single returns the one value of parameter name; ok is false when it is
// repeated (RFC 6749 3.1), present reports whether it is there at all.
func single(q url.Values, name string) (v string, present, ok bool) {
	vs, present := q[name]
	if len(vs) > 1 {
		return "", true, false
	}
	if present {
		v = vs[0]
	}
	return v, present, true
}

func (rp *RP) handle(ctx context.Context, r *http.Request, binding string) (*Result, []byte, *Error) {
	q := r.URL.Query()
	stateID, statePresent, ok := single(q, "state")
	if !ok {
		return nil, nil, refuse(ReasonState, errNoState)
	}
	upstreamErr, errPresent, ok := single(q, "error")
	if !ok {
		errPresent, upstreamErr = true, "other"
	}

	// An IdP may answer an error without state (it could not read the
	// request): there is nothing to redeem, and nothing is released.
	if !statePresent && errPresent {
		if e := rp.checkIss(q); e != nil {
			return nil, nil, e
		}
		return nil, nil, rp.upstreamError(upstreamErr)
	}
	if !statePattern.MatchString(stateID) {
		return nil, nil, refuse(ReasonState, errNoState)
	}
	// The browser binding is checked before the state is consumed: a
	// callback opened in another browser is refused and leaves the login
	// to the browser that started it (issue 19).
	if _, e := rp.peekPending(ctx, stateID, binding); e != nil {
		return nil, nil, e
	}
	p, e := rp.takePending(ctx, stateID, binding)
	if e != nil {
		return nil, nil, e
	}
	res, e := rp.redeem(ctx, q, p, errPresent, upstreamErr)
	if e != nil {
		// The pending login is this browser's: say which it was.
		e.State = p.State
		return nil, nil, e
	}
	return res, p.State, nil
}

// redeem checks the rest of the callback for the browser's pending login
// p (the IdP's error, when errPresent), redeems the code and verifies the
// ID token.
func (rp *RP) redeem(ctx context.Context, q url.Values, p *pending, errPresent bool, upstreamErr string) (*Result, *Error) {
	if e := rp.checkIss(q); e != nil {
		return nil, e
	}
	if errPresent {
		return nil, rp.upstreamError(upstreamErr)
	}
	code, present, ok := single(q, "code")
	if !ok || !present || code == "" {
		return nil, refuse(ReasonExchange, errNoCode)
	}

	tok, err := rp.oauth.Exchange(oidc.ClientContext(ctx, rp.client), code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, refuse(ReasonExchange, errTokenRefused)
		}
		e := refuse(ReasonExchange, errTokenUnreachable)
		e.Status = http.StatusBadGateway
		return nil, e
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, refuse(ReasonIDToken, errNoIDToken)
	}
	return rp.verify(ctx, rawID, p.Nonce)
}

// peekPending checks that state is pending for the browser binding,
// without consuming it.
func (rp *RP) peekPending(ctx context.Context, stateID, binding string) (*pending, *Error) {
	val, err := rp.store.Get(ctx, stateKeyPrefix+stateID)
	return rp.pendingFor(val, err, binding)
}

// takePending redeems state for the browser binding. Callers check the
// binding with peekPending first, so that only the browser that started a
// login consumes it.
func (rp *RP) takePending(ctx context.Context, stateID, binding string) (*pending, *Error) {
	val, err := rp.store.Take(ctx, stateKeyPrefix+stateID)
	return rp.pendingFor(val, err, binding)
}

// pendingFor decodes a pending login read from the store and checks that
// it is this RP's and belongs to binding.
func (rp *RP) pendingFor(val []byte, err error, binding string) (*pending, *Error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse(ReasonState, errUnknownState)
	}
	if err != nil {
		return nil, refuse(ReasonStoreUnavailable, fmt.Errorf("pending login: %w", err))
	}
	var p pending
	if err := json.Unmarshal(val, &p); err != nil {
		return nil, refuse(ReasonState, errPending)
	}
	// A state another RP (another upstream) made is not ours to finish.
	if p.Issuer != rp.issuer {
		return nil, refuse(ReasonState, errUnknownState)
	}
	h := sha256.Sum256([]byte(binding))
	if subtle.ConstantTimeCompare(h[:], p.BindingHash) != 1 {
		return nil, refuse(ReasonBinding, errBinding)
	}
	return &p, nil
}

// checkIss applies RFC 9207: iss, when present, is the issuer exactly; it
// must be present when the IdP advertises it.
func (rp *RP) checkIss(q url.Values) *Error {
	iss, present, ok := single(q, "iss")
	switch {
	case !ok:
		return refuse(ReasonIss, errIssParam)
	case !present && rp.issAdvertise:
		return refuse(ReasonIss, errIssMissing)
	case present && iss != rp.issuer:
		return refuse(ReasonIss, errIssParam)
	}
	return nil
}

func (rp *RP) upstreamError(code string) *Error {
	e := refuse(ReasonStatus, errUpstream)
	e.UpstreamError = safeUpstreamError(code)
	return e
}

// verify verifies the ID token with go-oidc, then checks azp, the nonce
// and RequiredClaims, and reads the claims. go-oidc's errors are not
// passed on: they quote claim values.
func (rp *RP) verify(ctx context.Context, raw, nonce string) (*Result, *Error) {
	tok, err := rp.verifier.Verify(oidc.ClientContext(ctx, rp.client), raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, refuse(ReasonExpired, errTokenExpired)
		}
		return nil, refuse(ReasonIDToken, errTokenInvalid)
	}
	var payload json.RawMessage
	if err := tok.Claims(&payload); err != nil {
		return nil, refuse(ReasonIDToken, errClaims)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, refuse(ReasonIDToken, errClaims)
	}

	// OIDC Core 3.1.3.7: with several audiences azp must be this client;
	// when present it must be this client anyway.
	azp, hasAZP := claims["azp"]
	if (len(tok.Audience) > 1 || hasAZP) && azp != rp.clientID {
		return nil, refuse(ReasonIDToken, errAZP)
	}
	if subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 || nonce == "" {
		return nil, refuse(ReasonNonce, errNonce)
	}
	if tok.Subject == "" {
		return nil, refuse(ReasonIDToken, errNoSubject)
	}

	res := &Result{Subject: tok.Subject, Claims: flatten(claims)}
	if v, ok := claims["auth_time"]; ok {
		n, isNum := v.(json.Number)
		sec, err := n.Int64()
		if !isNum || err != nil {
			return nil, refuse(ReasonIDToken, errClaims)
		}
		res.AuthnInstant = time.Unix(sec, 0).UTC()
	}
	if v, ok := claims["acr"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return nil, refuse(ReasonIDToken, errClaims)
		}
		res.AuthnContext = s
	}
	if v, ok := claims["amr"]; ok {
		arr, isArr := v.([]any)
		if !isArr {
			return nil, refuse(ReasonIDToken, errClaims)
		}
		for _, el := range arr {
			s, isStr := el.(string)
			if !isStr {
				return nil, refuse(ReasonIDToken, errClaims)
			}
			res.AMR = append(res.AMR, s)
		}
	}
	for name, allowed := range rp.required {
		if !slices.ContainsFunc(res.Claims[name], func(v string) bool { return slices.Contains(allowed, v) }) {
			return nil, refuse(ReasonClaim, errRequiredClaim)
		}
	}
	return res, nil
}

// flatten turns the claims into strings: scalars become one value, arrays
// of scalars their values; objects, nulls and arrays with either are left
// out.
func flatten(claims map[string]any) map[string][]string {
	out := make(map[string][]string, len(claims))
	for name, v := range claims {
		if s, ok := scalar(v); ok {
			out[name] = []string{s}
			continue
		}
		arr, ok := v.([]any)
		if !ok || len(arr) == 0 {
			continue
		}
		vals := make([]string, 0, len(arr))
		for _, el := range arr {
			s, ok := scalar(el)
			if !ok {
				vals = nil
				break
			}
			vals = append(vals, s)
		}
		if vals != nil {
			out[name] = vals
		}
	}
	return out
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	}
	return "", false
}
