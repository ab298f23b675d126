# Multiplies one numeric field by a factor, both given in script_params.
def register(params)
  @field = params['field']
  @multiplier = params['multiplier']
end

def filter(event)
  event.set(@field, event.get(@field) * @multiplier)
  [event]
end

test "multiplies the configured field" do
  parameters do
    { "field" => "myfield", "multiplier" => 3 }
  end

  in_event { { "myfield" => 123 } }

  expect("one event comes out") do |events|
    events.size == 1
  end

  expect("the field is 123 * 3") do |events|
    events.first.get("myfield") == 369
  end
end
