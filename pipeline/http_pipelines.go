package pipeline

import (
	"net/http"

	"github.com/labstack/echo/v5"
)

// PipelineInfo describes one loaded pipeline in GET /pipeline/pipelines.
type PipelineInfo struct {
	Name     string   `json:"name"`
	TimeZone string   `json:"time_zone"`
	Schedule string   `json:"schedule,omitempty"`
	Steps    []string `json:"steps"`
}

// PipelinesResponse is the answer of GET /pipeline/pipelines.
type PipelinesResponse struct {
	Pipelines []PipelineInfo `json:"pipelines"`
}

// listPipelines answers the pipelines this service has loaded, in load
// order, so that a client can default to the only one.
func (s *server) listPipelines(c *echo.Context) error {
	out := PipelinesResponse{Pipelines: []PipelineInfo{}}
	for _, d := range s.o.catalog.All() {
		info := PipelineInfo{Name: d.Name, TimeZone: d.TimeZone, Schedule: d.Schedule, Steps: []string{}}
		for _, st := range d.Steps {
			info.Steps = append(info.Steps, st.Name)
		}
		out.Pipelines = append(out.Pipelines, info)
	}
	return c.JSON(http.StatusOK, out)
}
