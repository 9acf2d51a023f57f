package query

import (
	"fmt"
	"math/bits"
	"net/http"

	"github.com/usagestream/usagestream/processors/pipeline"
	"github.com/usagestream/usagestream/processors/rules"
)

// PremiseMember is one customer's account on one service point of a
// premise, as the premise stage last saw it.
type PremiseMember struct {
	ServicePointID string `json:"service_point_id"`
	ServiceType    string `json:"service_type,omitempty"`
	CustomerID     string `json:"customer_id"`
	AccountID      string `json:"account_id,omitempty"`
	ActiveDate     string `json:"active_date,omitempty"`
	Active         bool   `json:"active"`
	Deleted        bool   `json:"deleted"`
	LastDateTo     string `json:"last_date_to,omitempty"`
}

// PremiseSite is the answer of GET /v1/premises/{id}: every service point
// of the premise with every customer who had an account on it.
type PremiseSite struct {
	PremiseID string          `json:"premise_id"`
	Partition int32           `json:"partition"`
	Members   []PremiseMember `json:"members"`
}

// DayCoverage is one local day of a channel's interval reads.
type DayCoverage struct {
	Date      string  `json:"date"`
	Present   int     `json:"present"`
	Missing   int     `json:"missing"`
	Estimated int     `json:"estimated"`
	Sum       float64 `json:"sum"`
}

// ChannelCoverage is the interval coverage of one channel.
type ChannelCoverage struct {
	Channel string        `json:"channel"`
	Minutes int           `json:"minutes"`
	Units   string        `json:"units,omitempty"`
	Days    []DayCoverage `json:"days"`
}

// Coverage is the answer of GET /v1/service-points/{id}/intervals.
type Coverage struct {
	ServicePointID string            `json:"service_point_id"`
	Partition      int32             `json:"partition"`
	Stale          bool              `json:"stale"`
	Channels       []ChannelCoverage `json:"channels"`
}

func (s *Server) premiseSite(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("premise_id", id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	st, p, ok := s.lookup(w, r, pipeline.StagePremise, id)
	if !ok {
		return
	}
	site, _ := st.(*rules.Site)
	if site == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("premise %q is unknown: no billing row for it has been processed", id), nil)
		return
	}
	v := PremiseSite{PremiseID: id, Partition: p, Members: []PremiseMember{}}
	for _, sp := range sortedKeys(site.Points) {
		for _, c := range sortedKeys(site.Points[sp]) {
			m := site.Points[sp][c]
			v.Members = append(v.Members, PremiseMember{ServicePointID: sp, ServiceType: m.ServiceType, CustomerID: c,
				AccountID: m.AccountID, ActiveDate: day(m.ActiveDate), Active: m.Active, Deleted: m.Deleted, LastDateTo: day(m.LastDateTo)})
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) intervals(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("service_point_id", id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	st, p, ok := s.lookup(w, r, pipeline.StageInterval, id)
	if !ok {
		return
	}
	v := Coverage{ServicePointID: id, Partition: p, Channels: []ChannelCoverage{}}
	// A service point without interval reads has an interval state only
	// for its bills, or none: an empty list either way.
	if ip, _ := st.(*rules.IntervalPoint); ip != nil {
		v.Stale = ip.StaleRaised
		for _, c := range ip.Channels {
			cc := ChannelCoverage{Channel: c.Name, Minutes: int(c.Minutes), Units: c.Units, Days: make([]DayCoverage, 0, len(c.Days))}
			for i := range c.Days {
				d := &c.Days[i]
				present, missing := 0, 0
				if c.Minutes > 0 {
					present, missing = d.Coverage(int(c.Minutes))
				}
				est := 0
				for _, x := range d.Est {
					est += bits.OnesCount64(x)
				}
				cc.Days = append(cc.Days, DayCoverage{Date: day(d.Date), Present: present, Missing: missing, Estimated: est, Sum: d.Sum})
			}
			v.Channels = append(v.Channels, cc)
		}
	}
	writeJSON(w, http.StatusOK, v)
}
