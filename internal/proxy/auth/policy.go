package auth

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Action is what a request does to a resource.
type Action string

// Actions (ACL 2.0 names).
const (
	ActionPub Action = "Pub"
	ActionSub Action = "Sub"
	ActionAll Action = "All" // in policies only: every action
)

// ResourceType is the kind of a resource.
type ResourceType string

// Resource types.
const (
	ResourceTopic ResourceType = "Topic"
	ResourceGroup ResourceType = "Group"
)

// Decision is a policy's verdict.
type Decision string

// Decisions.
const (
	Allow Decision = "Allow"
	Deny  Decision = "Deny"
)

// ErrForbidden is returned by Authorize when no policy allows the request or one denies it.
var ErrForbidden = errors.New("auth: forbidden")

// ACL is the whole permission file.
type ACL struct {
	Users []User `json:"users"`
}

// User is one AccessKey with its secret and policies.
type User struct {
	Username string `json:"username"` // the AccessKey
	Password string `json:"password"` // the SecretKey; never empty
	Disabled bool   `json:"disabled,omitempty"`
	// UserStatus is Apache ACL 2.0's spelling of Disabled: "enable" (default) or "disable".
	UserStatus string   `json:"userStatus,omitempty"`
	Super      bool     `json:"super,omitempty"` // allowed everything
	Policies   []Policy `json:"policies,omitempty"`
}

// Policy grants or denies actions on resources matching a pattern.
//
// Resource syntax: "<Type>:<pattern>" or "*" (every resource of every type), where pattern is
// a literal name, a prefix ending in '*' ("orders-*"), or "*". Names are matched without the
// client's namespace, as Apache's proxy does (a namespaced "orders" is Topic:orders).
type Policy struct {
	Resource string   `json:"resource"`
	Actions  []Action `json:"actions"`
	Decision Decision `json:"decision"`
	// SourceIPs, when not empty, limits the policy to clients whose address is one of these
	// IPs or inside one of these CIDR prefixes (Apache ACL 2.0 sourceIps).
	SourceIPs []string `json:"sourceIps,omitempty"`

	nets []netip.Prefix // parsed SourceIPs (Validate fills it)
}

// Validate checks the ACL's syntax: unique non-empty usernames, non-empty passwords, known
// actions, decisions and user statuses, well-formed resources and source IPs. It also
// prepares the policies' source networks, so a User is usable only after its ACL validated.
func (a *ACL) Validate() error {
	seen := map[string]bool{}
	for i := range a.Users {
		u := &a.Users[i]
		if u.Username == "" {
			return fmt.Errorf("auth: user %d: empty username", i)
		}
		if seen[u.Username] {
			return fmt.Errorf("auth: user %q defined twice", u.Username)
		}
		seen[u.Username] = true
		if u.Password == "" {
			// A signature keyed with "" can be made by anyone who knows the name (QA R8K-7).
			return fmt.Errorf("auth: user %q: empty password", u.Username)
		}
		switch strings.ToLower(u.UserStatus) {
		case "", "enable":
		case "disable":
			u.Disabled = true
		default:
			return fmt.Errorf("auth: user %q: userStatus %q: want enable or disable", u.Username, u.UserStatus)
		}
		for j := range u.Policies {
			p := &u.Policies[j]
			if err := p.validate(); err != nil {
				return fmt.Errorf("auth: user %q policy %d: %w", u.Username, j, err)
			}
		}
	}
	return nil
}

func (p *Policy) validate() error {
	p.nets = nil
	for _, s := range p.SourceIPs {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fmt.Errorf("sourceIps %q: not an IP address or CIDR prefix", s)
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		p.nets = append(p.nets, pfx.Masked())
	}
	if p.Decision != Allow && p.Decision != Deny {
		return fmt.Errorf("decision %q: want Allow or Deny", p.Decision)
	}
	if len(p.Actions) == 0 {
		return errors.New("no actions")
	}
	for _, a := range p.Actions {
		if a != ActionPub && a != ActionSub && a != ActionAll {
			return fmt.Errorf("action %q: want Pub, Sub or All", a)
		}
	}
	if p.Resource == "*" {
		return nil
	}
	t, pat, ok := strings.Cut(p.Resource, ":")
	if !ok || pat == "" {
		return fmt.Errorf("resource %q: want Type:pattern or *", p.Resource)
	}
	if ResourceType(t) != ResourceTopic && ResourceType(t) != ResourceGroup {
		return fmt.Errorf("resource %q: type must be Topic or Group", p.Resource)
	}
	if i := strings.IndexByte(pat, '*'); i >= 0 && i != len(pat)-1 {
		return fmt.Errorf("resource %q: '*' only at the end", p.Resource)
	}
	return nil
}

// fromSource reports whether a client at ip may use p (always when p names no source IPs;
// never when it does and the address is unknown).
func (p Policy) fromSource(ip netip.Addr) bool {
	if len(p.SourceIPs) == 0 {
		return true
	}
	nets := p.nets
	if len(nets) != len(p.SourceIPs) { // a Policy that never went through Validate
		q := p
		if q.validate() != nil {
			return false
		}
		nets = q.nets
	}
	ip = ip.Unmap()
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// matches reports whether p covers (typ, name, action).
func (p Policy) matches(typ ResourceType, name string, act Action) bool {
	actOK := false
	for _, a := range p.Actions {
		if a == act || a == ActionAll {
			actOK = true
			break
		}
	}
	if !actOK {
		return false
	}
	if p.Resource == "*" {
		return true
	}
	t, pat, _ := strings.Cut(p.Resource, ":")
	if ResourceType(t) != typ {
		return false
	}
	if prefix, ok := strings.CutSuffix(pat, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pat == name
}

// Authorize decides whether u may perform act on the resource (typ, name). Deny wins over
// allow; no matching allow is a denial. Super users are always allowed. ip is the client's
// address (the zero Addr when unknown), checked against policies that name source IPs: an
// Allow applies only from them, a Deny only to them.
func (u *User) Authorize(typ ResourceType, name string, act Action, ip netip.Addr) error {
	if u.Super {
		return nil
	}
	allowed := false
	for _, p := range u.Policies {
		if !p.matches(typ, name, act) || !p.fromSource(ip) {
			continue
		}
		if p.Decision == Deny {
			return fmt.Errorf("%w: %s %s:%s", ErrForbidden, act, typ, name)
		}
		allowed = true
	}
	if !allowed {
		return fmt.Errorf("%w: %s %s:%s", ErrForbidden, act, typ, name)
	}
	return nil
}

// index is an immutable lookup table built from an ACL.
type index struct {
	users map[string]*User
}

func newIndex(a *ACL) *index {
	ix := &index{users: make(map[string]*User, len(a.Users))}
	for i := range a.Users {
		u := a.Users[i]
		ix.users[u.Username] = &u
	}
	return ix
}

// Authenticator verifies request headers against the current ACL.
type Authenticator struct {
	store *Store
	skew  time.Duration
	now   func() time.Time
}

// NewAuthenticator returns an Authenticator over store. skew is the allowed clock skew of
// x-mq-date-time (<= 0 disables the replay check); now defaults to time.Now.
func NewAuthenticator(store *Store, skew time.Duration, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{store: store, skew: skew, now: now}
}

// Authenticate checks the authorization and date-time header values and returns the user.
// anyZone relaxes the date-time check for clients that stamp local time as if it were UTC
// (go5; see CheckDateTime).
func (a *Authenticator) Authenticate(authorization, dateTime string, anyZone bool) (*User, error) {
	if authorization == "" {
		return nil, ErrNoAuthorization
	}
	if dateTime == "" {
		return nil, ErrNoDateTime
	}
	h, err := ParseAuthorization(authorization)
	if err != nil {
		return nil, err
	}
	if err := CheckDateTime(dateTime, a.now(), a.skew, anyZone); err != nil {
		return nil, err
	}
	u := a.store.lookup(h.AccessKey)
	if u == nil {
		// Burn the same HMAC work as a real check so timing does not reveal existence.
		VerifySignature("", dateTime, h.Signature)
		return nil, fmt.Errorf("%w: %q", ErrUnknownUser, h.AccessKey)
	}
	if !VerifySignature(u.Password, dateTime, h.Signature) {
		return nil, ErrSignatureInvalid
	}
	if u.Disabled {
		return nil, fmt.Errorf("%w: %q", ErrDisabledUser, h.AccessKey)
	}
	return u, nil
}
