# Its own test expects a value the filter never sets: loading it must fail.
def filter(event)
  event.set('foo', 'bar')
  [event]
end

test "sets the field" do
  in_event { { "myfield" => 123 } }

  expect("foo is baz") do |events|
    events.first.get('foo') == 'baz'
  end
end
