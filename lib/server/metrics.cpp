#include "server/metrics.h"

#include <iterator>

namespace cardinal::server {
namespace {

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

ProxyMetrics::ProxyMetrics(prometheus::Registry& r)
    : http_requests(prometheus::BuildCounter()
                        .Name("cardinal_http_requests_total")
                        .Help("HTTP requests answered, by handler and status code.")
                        .Register(r)),
      http_duration(prometheus::BuildHistogram()
                        .Name("cardinal_http_request_duration_seconds")
                        .Help("Time from a complete request to its answer, upstream delivery included.")
                        .Register(r)),
      in_flight(prometheus::BuildGauge()
                    .Name("cardinal_write_requests_in_flight")
                    .Help("Remote-write requests received and not yet answered.")
                    .Register(r)
                    .Add({})),
      connections(prometheus::BuildGauge()
                      .Name("cardinal_http_connections")
                      .Help("Open client connections.")
                      .Register(r)
                      .Add({})),
      connections_refused(counter(r, "cardinal_http_connections_refused_total",
                                  "Connections closed at accept because --web.max-connections was reached.")),
      rejected(prometheus::BuildCounter()
                   .Name("cardinal_rejected_requests_total")
                   .Help("Remote-write requests refused before forwarding, by reason.")
                   .Register(r)),
      received_requests(counter(r, "cardinal_received_requests_total", "Remote-write requests decoded.")),
      received_series(counter(r, "cardinal_received_series_total", "Series in decoded requests.")),
      received_samples(counter(r, "cardinal_received_samples_total", "Float samples in decoded requests.")),
      received_histograms(counter(r, "cardinal_received_histograms_total", "Native histogram samples in decoded requests.")),
      received_exemplars(counter(r, "cardinal_received_exemplars_total", "Exemplars in decoded requests.")),
      received_metadata(counter(r, "cardinal_received_metadata_total", "Metadata entries in decoded requests.")),
      received_compressed_bytes(counter(r, "cardinal_received_compressed_bytes_total", "Request body bytes received (snappy).")),
      received_decompressed_bytes(counter(r, "cardinal_received_decompressed_bytes_total", "Request bytes after snappy decompression.")),
      forwarded_series(counter(r, "cardinal_forwarded_series_total", "Series the upstream accepted.")),
      forwarded_samples(counter(r, "cardinal_forwarded_samples_total", "Float samples the upstream accepted.")),
      forwarded_histograms(counter(r, "cardinal_forwarded_histograms_total", "Native histogram samples the upstream accepted.")),
      forwarded_exemplars(counter(r, "cardinal_forwarded_exemplars_total", "Exemplars the upstream accepted.")),
      forwarded_metadata(counter(r, "cardinal_forwarded_metadata_total", "Metadata entries the upstream accepted.")),
      forwarded_compressed_bytes(counter(r, "cardinal_forwarded_compressed_bytes_total", "Request body bytes the upstream accepted (snappy).")),
      forwarded_unchanged_requests(counter(r, "cardinal_forwarded_unchanged_requests_total",
                                           "Requests no stage changed, forwarded with their original body.")),
      received_v2_requests(counter(r, "cardinal_received_v2_requests_total",
                                   "Remote-write 2.0 requests decoded (also counted in cardinal_received_requests_total).")),
      forwarded_translated_requests(counter(r, "cardinal_forwarded_translated_requests_total",
                                            "Requests the upstream accepted in the other remote-write protocol than "
                                            "they arrived in (--upstream.protocol).")),
      plan_cache_plans(prometheus::BuildGauge()
                           .Name("cardinal_plan_cache_plans")
                           .Help("Label-set plans held (what the label stages did to a series, replayed when it "
                                 "repeats), as of the last aggregation interval.")
                           .Register(r)
                           .Add({})),
      plan_cache_bytes(prometheus::BuildGauge()
                           .Name("cardinal_plan_cache_bytes")
                           .Help("Memory the label-set plans take (bounded by --cache.plan-memory per tenant).")
                           .Register(r)
                           .Add({})),
      plan_cache_replayed(prometheus::BuildCounter()
                              .Name("cardinal_plan_cache_series_total")
                              .Help("Series looked up in the label-set plans, by result (replayed: the label stages' "
                                    "result replayed; missed: the stages ran). Updated each aggregation interval.")
                              .Register(r)
                              .Add({{"result", "replayed"}})),
      plan_cache_missed(prometheus::BuildCounter()
                            .Name("cardinal_plan_cache_series_total")
                            .Register(r)
                            .Add({{"result", "missed"}})),
      io_thread_moves(prometheus::BuildCounter()
                          .Name("cardinal_io_thread_moves_total")
                          .Help("Times an I/O thread that started processing on the CPU where another processing I/O "
                                "thread waited moved to another CPU (--web.io-threads-spread). Updated each "
                                "aggregation interval.")
                          .Register(r)
                          .Add({})),
      split_shared(prometheus::BuildCounter()
                       .Name("cardinal_split_requests_total")
                       .Help("Requests decoded, processed and encoded in parts by two I/O threads "
                             "(--web.split-request-bytes), by how the parts went through the stages: shared (some "
                             "on another I/O thread), alone (all on the request's thread: no other was free in "
                             "time), in_order (a series in two parts: all on the request's thread, in order).")
                       .Register(r)
                       .Add({{"stages", "shared"}})),
      split_alone(prometheus::BuildCounter()
                      .Name("cardinal_split_requests_total")
                      .Register(r)
                      .Add({{"stages", "alone"}})),
      split_in_order(prometheus::BuildCounter()
                         .Name("cardinal_split_requests_total")
                         .Register(r)
                         .Add({{"stages", "in_order"}})) {
  auto& steps = prometheus::BuildHistogram()
                    .Name("cardinal_write_step_duration_seconds")
                    .Help("Wall time of each step of a remote-write request: decompress, decode, process (the "
                          "stages), encode (encoding and compressing the forwarded body), upstream (sent until "
                          "the upstream's answer, retries included). A request split between two threads "
                          "(--web.split-request-bytes) encodes its parts during process when they changed.")
                    .Register(r);
  const prometheus::Histogram::BucketBoundaries bounds{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                       0.01,    0.025,  0.05,    0.1,    0.25,  1};
  for (size_t i = 0; i < std::size(kWriteStepNames); ++i)
    write_step[i] = &steps.Add({{"step", kWriteStepNames[i]}}, bounds);
}

void ProxyMetrics::countRequest(const std::string& handler, int code, double seconds) {
  http_requests.Add({{"handler", handler}, {"code", std::to_string(code)}}).Increment();
  http_duration
      .Add({{"handler", handler}}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                          0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
      .Observe(seconds);
}

}  // namespace cardinal::server
