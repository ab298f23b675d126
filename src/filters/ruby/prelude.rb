# The Ruby half of Sluice's `ruby` filter, evaluated once when the VM starts.
#
# Rust defines the classes that reach Rust data (LogStash::Event, LogStash::Timestamp,
# Sluice.__log); this file adds what is easier said in Ruby: the rest of the Timestamp
# API, the logger scripts see, the per-event loop with Logstash's exception handling,
# the timeout watchdog, and the `path` script runtime with its `test` blocks.

require 'json'
require 'time'

module LogStash
  class Timestamp
    include Comparable

    class << self
      def new(time = nil)
        case time
        when nil then now
        when ::LogStash::Timestamp then __at(time.to_i, time.nsec)
        when ::Time then __at(time.to_i, time.nsec)
        when ::Numeric then at(time)
        when ::String then parse_iso8601(time)
        else raise ::TypeError, "cannot make a LogStash::Timestamp from #{time.class}"
        end
      end

      def now
        t = ::Time.now
        __at(t.to_i, t.nsec)
      end

      def at(*args)
        t = ::Time.at(*args)
        __at(t.to_i, t.nsec)
      end

      def parse_iso8601(text)
        __parse(text.to_s) or raise ::LogStash::TimestampParserError, "invalid timestamp string #{text.inspect}"
      end

      # A Timestamp for a Timestamp, Time or ISO 8601 string; nil for anything else.
      def coerce(value)
        case value
        when ::LogStash::Timestamp, ::Time then new(value)
        when ::String then __parse(value)
        end
      end
    end

    def time
      ::Time.at(to_i, nsec, :nsec).utc
    end
    alias to_time time

    def to_f
      to_i + nsec / 1_000_000_000.0
    end

    def usec
      nsec / 1000
    end
    alias tv_usec usec

    def year
      time.year
    end

    def utc
      self
    end
    alias gmtime utc

    def to_s
      to_iso8601
    end

    def inspect
      to_iso8601
    end

    def to_json(*args)
      to_iso8601.to_json(*args)
    end

    def <=>(other)
      case other
      when ::LogStash::Timestamp then [to_i, nsec] <=> [other.to_i, other.nsec]
      when ::Time then time <=> other
      end
    end

    def eql?(other)
      other.is_a?(::LogStash::Timestamp) && (self <=> other) == 0
    end

    def hash
      [to_i, nsec].hash
    end

    def +(seconds)
      ::LogStash::Timestamp.new(time + seconds)
    end

    # Another Timestamp or Time: the difference in seconds (a Float); a number: the
    # Timestamp that many seconds earlier.
    def -(other)
      case other
      when ::LogStash::Timestamp then time - other.time
      when ::Time then time - other
      else ::LogStash::Timestamp.new(time - other)
      end
    end
  end

  class TimestampParserError < ::StandardError; end

  class Event
    def self.new(data = {})
      __new(data)
    end

    def inspect
      "#<LogStash::Event #{to_hash.inspect}>"
    end

    def to_s
      "#{timestamp} #{get('host')} #{get('message')}"
    end
  end

  module Filters; end
end

module Sluice
  # Raised into a script that ran past its time limit. Not a StandardError, so a
  # script's own `rescue => e` does not swallow it.
  class ScriptTimeout < ::Exception; end

  # Where scripts' `@logger` and `logger` write: Sluice's log, at the same levels.
  class Logger
    LEVELS = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, fatal: 5 }.freeze

    def initialize(label)
      @label = label.to_s
    end

    LEVELS.each do |name, level|
      define_method(name) do |message = nil, data = nil, &block|
        message = block.call if message.nil? && block
        Sluice.__log(level, @label, message.to_s, Sluice.details(data))
        nil
      end
      define_method(:"#{name}?") { Sluice.__log_enabled(level) }
    end
  end

  def self.details(data)
    case data
    when nil then ""
    when ::Hash then data.map { |k, v| "#{k}=#{v.is_a?(::String) ? v : v.inspect}" }.join(" ")
    else data.inspect
    end
  end

  # A String as UTF-8: re-encoded when it says another encoding, bytes that are not
  # UTF-8 replaced, so nothing a script builds fails to reach an event.
  def self.utf8(s)
    if s.encoding == ::Encoding::BINARY || s.encoding == ::Encoding::US_ASCII
      s.dup.force_encoding(::Encoding::UTF_8).scrub
    else
      s.encode(::Encoding::UTF_8, invalid: :replace, undef: :replace).scrub
    end
  end

  # Bounds the time one event spends in a script. A Ruby thread wakes every
  # fifth of the limit; when the same event has been running for the whole limit it
  # raises ScriptTimeout in the VM's thread (again each further limit, should the
  # script rescue it). Counting events (a generation number) instead of reading a clock
  # per event keeps the cost per event to two assignments.
  module Watchdog
    @generation = 0
    @busy = false
    @limit = 1.0
    @thread = nil
    @target = nil

    class << self
      def guard(limit)
        return yield if limit.nil?
        start unless @thread&.alive?
        @limit = limit
        begin
          @generation += 1
          @busy = true
          yield
        ensure
          @busy = false
        end
      end

      private

      def start
        @target = ::Thread.current
        @thread = ::Thread.new { watch }
        @thread.name = "sluice-ruby-watchdog" if @thread.respond_to?(:name=)
      end

      def watch
        seen = nil
        since = nil
        loop do
          sleep([@limit / 5.0, 0.01].max)
          unless @busy
            seen = nil
            next
          end
          now = ::Process.clock_gettime(::Process::CLOCK_MONOTONIC)
          if seen != @generation
            seen = @generation
            since = now
          elsif now - since >= @limit
            since = now
            @target.raise(ScriptTimeout, "the script ran longer than its timeout of #{@limit}s")
          end
        end
      end
    end
  end

  # What one `ruby` filter instance runs: the common part (exception handling and
  # tagging, results) of `code` and `path` filters.
  class Runner
    # Distinct exception messages logged per filter; beyond it they are counted only.
    MAX_DISTINCT_ERRORS = 1000

    def initialize(id, opts)
      @id = id
      @logger = Logger.new(opts["label"] || id.to_s)
      @tag_on_exception = opts.fetch("tag_on_exception")
      @tag_with_exception_message = opts.fetch("tag_with_exception_message")
      @timeout = opts["timeout"]
      @seen_errors = {}
      @unlogged_errors = 0
    end

    private

    def report(event, error, prefix, extra = {})
      if @tag_with_exception_message
        event.tag("#{@tag_on_exception}: #{error}")
      end
      event.tag(@tag_on_exception)
      log_once(prefix + error.message.to_s, error, extra)
    rescue ::Exception => e
      log_once("could not tag an event after a script error: #{e.message}", e, {})
    end

    def log_once(message, error, extra)
      if @seen_errors.key?(message)
        return
      elsif @seen_errors.size >= MAX_DISTINCT_ERRORS
        @unlogged_errors += 1
        if @unlogged_errors == 1
          @logger.error("more than #{MAX_DISTINCT_ERRORS} distinct script errors: further new messages are not logged")
        end
        return
      end
      @seen_errors[message] = true
      location = error.backtrace&.first
      @logger.error(message, extra.merge(class: error.class.name, at: location))
    end
  end

  # A filter with `code` (and `init`): the code is the body of a method of a
  # LogStash::Filters::Ruby object, as in Logstash, so `init`'s instance variables and
  # methods are the code's.
  class InlineRunner < Runner
    def initialize(id, opts)
      super
      @filter = ::LogStash::Filters::Ruby.new(id, @logger, opts)
      @filter.instance_eval(opts["init"], "(ruby filter init)", 1) if opts["init"]
      @filter.instance_eval(
        "define_singleton_method(:filter_method) do |event, &new_event_block|\n#{opts.fetch('code')}\nend",
        "(ruby filter code)", 0
      )
    end

    def run_batch(events)
      out = []
      emitted = []
      new_event_block = proc { |e| emitted << e }
      events.each do |event|
        begin
          Watchdog.guard(@timeout) { @filter.filter_method(event, &new_event_block) }
          event.__sluice_matched
        rescue ::Exception => e
          report(event, e, "Ruby exception occurred: ")
        end
        out << event unless event.cancelled?
        next if emitted.empty?
        emitted.each do |n|
          if n.is_a?(::LogStash::Event)
            out << n unless n.cancelled?
          else
            log_once("new_event_block was called with a #{n.class}, not a LogStash::Event: ignored",
                     ::TypeError.new, {})
          end
        end
        emitted.clear
      end
      out
    end
  end

  # A filter with `path`: a script defining `register(params)` and `filter(event)`,
  # whose `test` blocks ran when it was loaded.
  class ScriptRunner < Runner
    def initialize(id, opts)
      super
      @path = opts.fetch("path")
      @script = Script.new(@path, opts.fetch("script"), opts.fetch("script_params"), @logger)
      @script.test
      @script.register
    end

    def run_batch(events)
      out = []
      events.each do |event|
        begin
          results = Watchdog.guard(@timeout) { @script.execute(event) }
          event.__sluice_matched
          Script.check_result_events!(results)
        rescue ::Exception => e
          report(event, e, "Could not process event: ", script_path: @path)
          out << event unless event.cancelled?
          next
        end
        # As Logstash: the original keeps its place before the events the script made,
        # and is cancelled when the script did not return it.
        others = results.reject { |r| r.equal?(event) }
        event.cancel if others.size == results.size
        out << event unless event.cancelled?
        others.each { |r| out << r unless r.cancelled? }
      end
      out
    end
  end

  class ScriptError < ::StandardError; end

  # A blank object a script is evaluated in, so its methods and instance variables
  # meet nothing else's.
  class ExecutionContext
    def initialize(name, logger)
      @__name__ = name
      @__logger__ = logger
    end

    def logger
      @__logger__
    end

    def register(params)
      logger.debug("skipping register since the script didn't define it")
    end

    def to_s
      "<ExecutionContext #{@__name__}>"
    end
  end

  # A `path` script: its main context, and its tests, each run in a context of its own.
  class Script
    attr_reader :path, :logger

    def self.check_result_events!(results)
      unless results.is_a?(::Array)
        raise "Custom script did not return an array from 'filter'. Only arrays may be returned!"
      end
      results.each do |r|
        unless r.is_a?(::LogStash::Event)
          raise "Custom script returned a non event object '#{r.inspect}'!" \
                " You must an array of events from this function! To drop an event simply return nil."
        end
      end
    end

    def initialize(path, content, params, logger)
      @path = path
      @content = content
      @params = params
      @logger = logger
      @tests = []
      @main = context(:main, false)
      load_into(@main)
      unless @main.respond_to?(:filter)
        raise "Script does not define a filter! Please ensure that you have defined a filter method!"
      end
    rescue ::ScriptError, ::StandardError => e
      raise Sluice::ScriptError, "Error during load of '#{path}': #{e.inspect}"
    end

    def context(name, test_mode)
      ctx = ExecutionContext.new(name, @logger)
      script = self
      if test_mode
        ctx.define_singleton_method(:test) { |*_args, &_block| nil }
      else
        ctx.define_singleton_method(:test) { |test_name, &block| script.add_test(test_name, &block) }
      end
      ctx
    end

    def load_into(ctx)
      ctx.instance_eval(@content, @path, 1)
    end

    def add_test(name, &block)
      t = TestContext.new(self, name)
      t.instance_eval(&block)
      @tests << t
    end

    def register
      @main.register(@params)
    rescue ::ScriptError, ::StandardError => e
      raise Sluice::ScriptError, "Error during register of '#{path}': #{e.inspect}"
    end

    def execute(event)
      @main.filter(event)
    end

    def test
      totals = { passed: 0, failed: 0, errored: 0 }
      @tests.each { |t| t.execute.each { |k, n| totals[k] += n } }
      @logger.info("Test run complete", script_path: path, results: totals)
      bad = totals[:failed] + totals[:errored]
      if bad > 0
        raise Sluice::ScriptError, "Script '#{path}' had #{bad} failing tests! Check the error log for details."
      end
    end
  end

  # One `test "name" do ... end` block of a script.
  class TestContext
    attr_reader :name, :script

    def initialize(script, name)
      @script = script
      @name = name
      @expects = []
      @parameters = {}
      @in_events = nil
      @context = script.context("Test/#{name}", true)
      script.load_into(@context)
    end

    def parameters(&block)
      return @parameters unless block
      @parameters = block.call
      raise ::ArgumentError, "Test parameters must be a hash in #{@name}!" unless @parameters.is_a?(::Hash)
      @context.register(@parameters)
    end

    def in_event(&block)
      return @in_events unless block
      given = block.call
      hashes = given.is_a?(::Hash) ? [given] : Kernel.Array(given)
      hashes.each do |h|
        unless h.is_a?(::Hash)
          raise ::ArgumentError, "In event for #{@name} must receive either a hash or an array of hashes! got a '#{h.class}' in #{hashes.inspect}"
        end
      end
      @in_events = hashes.map { |h| ::LogStash::Event.new(h) }
    end
    alias in_events in_event

    def expect(name, &block)
      @expects << [name, block]
    end

    def execute
      raise "You must declare an `in_event` to run tests!" unless @in_events
      results = []
      @in_events.each do |e|
        r = @context.filter(e)
        Script.check_result_events!(r)
        results += r
      end
      counts = { passed: 0, failed: 0, errored: 0 }
      @expects.each do |expect_name, block|
        outcome, message, extra = run_expect(expect_name, block, results)
        counts[outcome] += 1
        next if outcome == :passed
        @script.logger.error(message, extra.merge(
          parameters: @parameters,
          in_events: @in_events.map(&:to_hash_with_metadata),
          results: results.map(&:to_hash_with_metadata)
        ))
      end
      counts
    rescue ::ScriptError, ::StandardError => e
      @script.logger.error("***TEST RAISED ERROR: '#{@name}'***", exception: e.inspect, at: e.backtrace&.first)
      { passed: 0, failed: 0, errored: [@expects.size, 1].max }
    end

    private

    def run_expect(expect_name, block, results)
      if block.call(results)
        [:passed, nil, {}]
      else
        [:failed, "***TEST FAILURE FOR: '#{@name} #{expect_name}'***", {}]
      end
    rescue ::StandardError => e
      [:errored, "***TEST RAISED ERROR: '#{@name} #{expect_name}'***", { exception: e.inspect, backtrace: e.backtrace }]
    end
  end

  FILTERS = {}

  def self.register(id, opts)
    FILTERS[id] = opts["path"] ? ScriptRunner.new(id, opts) : InlineRunner.new(id, opts)
    nil
  end

  def self.unregister(id)
    FILTERS.delete(id)
    nil
  end

  def self.run_batch(id, events)
    FILTERS.fetch(id).run_batch(events)
  end
end

module LogStash
  module Filters
    # The object a `code` filter's `init` and `code` run in, as `self`.
    class Ruby
      attr_reader :id, :logger

      def initialize(id, logger, opts)
        @id = id
        @logger = logger
        @code = opts["code"]
        @init = opts["init"]
      end

      def filter_matched(event)
        event.__sluice_matched
      end

      def to_s
        "<LogStash::Filters::Ruby #{@id}>"
      end
    end
  end
end
