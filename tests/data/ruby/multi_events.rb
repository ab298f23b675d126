# Returns three copies instead of the event: the original is cancelled.
def register(params)
end

def filter(event)
  [event.clone, event.clone, event.clone]
end
