// Real senders scraping the fixture target and remote-writing through Cardinal into a real
// Prometheus receiver: a Prometheus agent (sorted labels) and vmagent (unsorted labels).
#include <doctest/doctest.h>

#include "harness.h"

namespace cardinal::integration {
namespace {

constexpr int kMinScrapes = 3;
const char* const kFixtureSelector = R"({__name__=~"fixture_.*"})";

// What the fixture served, as the receiver must store it: fixture labels + job + instance.
ExpectedSamples servedAsStored(const std::vector<ScrapeTarget::Served>& served,
                               const Labels& target_labels, int max_scrape) {
  ExpectedSamples out;
  for (const auto& s : served) {
    if (max_scrape > 0 && s.scrape > max_scrape) continue;
    Labels labels = s.labels;
    labels.insert(target_labels.begin(), target_labels.end());
    out[labels][s.timestamp_ms] = s.value;
  }
  return out;
}

// Waits for kMinScrapes scrapes, then until the receiver holds every sample of those scrapes,
// then checks that everything stored under fixture_* was served exactly so.
void checkFixtureStored(const PromApi& receiver, const ScrapeTarget& target,
                        const Labels& target_labels) {
  REQUIRE_MESSAGE(waitUntil([&] { return target.scrapeCount() >= kMinScrapes; }, Millis(20000)),
                  "the sender scraped the fixture only " << target.scrapeCount() << " times");
  const ExpectedSamples must_have =
      servedAsStored(target.served(), target_labels, kMinScrapes);
  StoredSeries stored;
  StoredDiff diff;
  bool arrived = waitUntil(
      [&] {
        stored = receiver.rawSamples(kFixtureSelector);
        diff = diffStored(must_have, servedAsStored(target.served(), target_labels, 0), stored);
        return diff.missing.empty();
      },
      Millis(30000), Millis(250));
  INFO("last fixture body served:\n" << target.lastBody());
  CHECK_MESSAGE(arrived, "the first " << kMinScrapes
                                      << " scrapes did not all arrive within 30s:\n"
                                      << diff.report());
  // Re-read what was served after the last query, so samples in flight count as sent.
  diff = diffStored(must_have, servedAsStored(target.served(), target_labels, 0), stored);
  CHECK_MESSAGE(diff.empty(), diff.report());
  size_t n = 0;
  for (const auto& [labels, samples] : stored) n += samples.size();
  MESSAGE("receiver holds " << stored.size() << " fixture series, " << n << " samples after "
                            << target.scrapeCount() << " scrapes");
}

std::string remoteWriteYaml(const std::string& url) {
  return "remote_write:\n"
         "  - url: " + url + "\n"
         "    queue_config:\n"
         "      batch_send_deadline: 1s\n"
         "      min_backoff: 30ms\n"
         "      max_backoff: 1s\n";
}

TEST_CASE("Prometheus agent -> Cardinal -> Prometheus: every scraped sample stored exactly") {
  TempDir dir;
  PrometheusServer::Options ropts;
  ropts.name = "receiver";
  PrometheusServer receiver(dir, ropts);
  CardinalServer cardinal(dir, receiver.writeUrl());
  ScrapeTarget target;

  PrometheusServer::Options aopts;
  aopts.name = "agent";
  aopts.agent = true;
  aopts.config_yaml =
      scrapeConfigYaml("fixture", target.hostPort()) + remoteWriteYaml(cardinal.writeUrl());
  PrometheusServer agent(dir, aopts);
  INFO(describe(agent.process()));
  INFO(describe(cardinal.process()));
  INFO(describe(receiver.process()));

  checkFixtureStored(receiver.api(), target,
                     {{"job", "fixture"}, {"instance", target.hostPort()}});
}

TEST_CASE("vmagent -> Cardinal -> Prometheus: scraped and pushed samples stored exactly, sorted") {
  TempDir dir;
  PrometheusServer::Options ropts;
  ropts.name = "receiver";
  PrometheusServer receiver(dir, ropts);
  CardinalServer cardinal(dir, receiver.writeUrl());
  // Second path: the same data through another Cardinal into a recorder, to see the label
  // order Cardinal forwards; third path: vmagent straight into a recorder, to see that vmagent
  // really sends unsorted labels (otherwise this test proves nothing about sorting).
  FakeUpstream sorted_recorder;
  CardinalServer cardinal2(dir, sorted_recorder.writeUrl(), {}, "cardinal2");
  FakeUpstream raw_recorder;
  ScrapeTarget target;

  VmAgent vmagent(dir, scrapeConfigYaml("fixture", target.hostPort()), cardinal.writeUrl(),
                  {"-remoteWrite.url=" + cardinal2.writeUrl(),
                   "-remoteWrite.url=" + raw_recorder.writeUrl()});
  INFO(describe(vmagent.process()));
  INFO(describe(cardinal.process()));
  INFO(describe(cardinal2.process()));
  INFO(describe(receiver.process()));

  // vmagent 1.79 sorts the labels of what it scrapes, but forwards pushed data (here the
  // Prometheus text import) in the order it came, like remote-written data.
  const int64_t t0 = nowMs() - 60000;
  const std::string pushed =
      "it_vm_pushed_total{zone=\"b\",app=\"x\",instance=\"i:1\"} 5 " + std::to_string(t0) +
      "\n"
      "it_vm_pushed_total{zone=\"b\",app=\"x\",instance=\"i:1\"} 6.5 " +
      std::to_string(t0 + 1000) +
      "\n"
      "it_vm_pushed_total{zone=\"c\",app=\"y\"} -2 " + std::to_string(t0 + 2) + "\n";
  auto push = httpPost(vmagent.baseUrl() + "/api/v1/import/prometheus", pushed);
  REQUIRE_MESSAGE(push.status / 100 == 2, "vmagent import: " << push.summary());
  ExpectedSamples pushed_expected = {
      {{{"__name__", "it_vm_pushed_total"}, {"app", "x"}, {"instance", "i:1"}, {"zone", "b"}},
       {{t0, 5}, {t0 + 1000, 6.5}}},
      {{{"__name__", "it_vm_pushed_total"}, {"app", "y"}, {"zone", "c"}}, {{t0 + 2, -2}}}};

  checkFixtureStored(receiver.api(), target,
                     {{"job", "fixture"}, {"instance", target.hostPort()}});

  StoredSeries stored;
  StoredDiff diff;
  bool arrived = waitUntil(
      [&] {
        stored = receiver.api().rawSamples("it_vm_pushed_total");
        diff = diffStored(pushed_expected, pushed_expected, stored);
        return diff.empty();
      },
      Millis(15000), Millis(250));
  CHECK_MESSAGE(arrived, "pushed samples in the receiver:\n" << diff.report());

  REQUIRE(waitUntil(
      [&] {
        for (const auto& ts : sorted_recorder.allSeries()) {
          if (labelsOf(ts).at("__name__") == "it_vm_pushed_total") return true;
        }
        return false;
      },
      Millis(10000)));
  size_t unsorted_from_vmagent = 0;
  const auto raw_series = raw_recorder.allSeries();
  std::string examples;
  for (const auto& ts : raw_series) {
    if (!labelsSorted(ts)) ++unsorted_from_vmagent;
    if (examples.size() < 2000) examples += pairsToString(labelPairsOf(ts)) + "\n";
  }
  CHECK_MESSAGE(unsorted_from_vmagent > 0,
                "vmagent sent only sorted label sets (" << raw_series.size() << " series in "
                    << raw_recorder.requestCount()
                    << " requests); the sorting check below proves nothing. Examples:\n"
                    << examples);
  auto forwarded = sorted_recorder.allSeries();
  CHECK_MESSAGE(!forwarded.empty(), "cardinal2 forwarded nothing");
  for (const auto& ts : forwarded) {
    if (!labelsSorted(ts)) {
      FAIL_CHECK("Cardinal forwarded labels unsorted: " << pairsToString(labelPairsOf(ts)));
      break;
    }
  }
}

}  // namespace
}  // namespace cardinal::integration
